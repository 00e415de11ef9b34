package ecs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// findRule returns the listener's rule matching host, nil when none.
func (c *clients) findRule(ctx context.Context, host string) (*elbtypes.Rule, []int32, error) {
	var used []int32
	var found *elbtypes.Rule
	p := elb.NewDescribeRulesPaginator(c.elb, &elb.DescribeRulesInput{ListenerArn: aws.String(c.env.ListenerARN)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("describe rules: %w", err)
		}
		for _, r := range page.Rules {
			var prio int32
			_, _ = fmt.Sscan(aws.ToString(r.Priority), &prio)
			used = append(used, prio)
			for _, cond := range r.Conditions {
				if cond.HostHeaderConfig != nil && slices.Equal(cond.HostHeaderConfig.Values, []string{host}) {
					found = &r
				}
			}
		}
	}
	return found, used, nil
}

func (c *clients) forward(ctx context.Context, routes []strategy.Route) ([]elbtypes.Action, error) {
	var tgs []elbtypes.TargetGroupTuple
	for _, r := range routes {
		arn, err := c.targetGroup(ctx, r.Group)
		if err != nil {
			return nil, err
		}
		if arn == "" {
			return nil, fmt.Errorf("route to group %s: it has no target group", r.Group)
		}
		tgs = append(tgs, elbtypes.TargetGroupTuple{TargetGroupArn: aws.String(arn), Weight: aws.Int32(int32(r.Weight))})
	}
	return []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: tgs}}}, nil
}

// ensureRule makes host's rule forward to routes: modified when it exists,
// else created at a free priority derived from the host.
func (d *Driver) ensureRule(ctx context.Context, c *clients, host string, routes []strategy.Route) error {
	acts, err := c.forward(ctx, routes)
	if err != nil {
		return err
	}
	for try := 0; try < 50; try++ {
		r, used, err := c.findRule(ctx, host)
		if err != nil {
			return err
		}
		if r != nil {
			if _, err := c.elb.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: r.RuleArn, Actions: acts}); err != nil {
				return fmt.Errorf("route %s: %w", host, err)
			}
			return nil
		}
		prio := priority(host, try)
		for slices.Contains(used, prio) {
			try++
			prio = priority(host, try)
		}
		_, err = c.elb.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: aws.String(c.env.ListenerARN), Priority: aws.Int32(prio), Actions: acts,
			Conditions: []elbtypes.RuleCondition{{Field: aws.String("host-header"), HostHeaderConfig: &elbtypes.HostHeaderConditionConfig{Values: []string{host}}}}})
		if apiCode(err) == "PriorityInUse" {
			continue // another release took it meanwhile
		}
		if err != nil {
			return fmt.Errorf("route %s: %w", host, err)
		}
		return nil
	}
	return fmt.Errorf("route %s: no free listener priority found", host)
}

func (d *Driver) deleteRule(ctx context.Context, c *clients, host string) error {
	r, _, err := c.findRule(ctx, host)
	if err != nil || r == nil {
		return err
	}
	if _, err := c.elb.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: r.RuleArn}); err != nil && apiCode(err) != "RuleNotFound" {
		return fmt.Errorf("delete the rule of %s: %w", host, err)
	}
	return nil
}

// Routes reads the service's rule: its target groups (named as their
// groups) and weights.
func (d *Driver) Routes(ctx context.Context, ref target.ServiceRef) ([]strategy.Route, error) {
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return nil, err
	}
	r, _, err := c.findRule(ctx, c.host(ref))
	if err != nil || r == nil {
		return nil, err
	}
	var out []strategy.Route
	for _, a := range r.Actions {
		if a.ForwardConfig == nil {
			continue
		}
		for _, t := range a.ForwardConfig.TargetGroups {
			out = append(out, strategy.Route{Group: tgNameOf(aws.ToString(t.TargetGroupArn)), Weight: int(aws.ToInt32(t.Weight))})
		}
	}
	return out, nil
}

// SetRoutes replaces the rule's forward action in one ModifyRule call (an
// atomic switch at the load balancer); no routes delete the rule.
func (d *Driver) SetRoutes(ctx context.Context, ref target.ServiceRef, routes []strategy.Route) error {
	caps := Capabilities()
	if len(routes) > caps.MaxWeightedGroups {
		return fmt.Errorf("%d weighted groups: an application load balancer forwards to at most %d", len(routes), caps.MaxWeightedGroups)
	}
	for _, r := range routes {
		if r.Weight < 0 || r.Weight > caps.MaxWeight {
			return fmt.Errorf("group %s: weight %d outside 0 to %d", r.Group, r.Weight, caps.MaxWeight)
		}
	}
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return err
	}
	if len(routes) == 0 {
		return d.deleteRule(ctx, c, c.host(ref))
	}
	return d.ensureRule(ctx, c, c.host(ref), routes)
}

// SetPreview points the service's preview host
// (<service>-preview.<environment>.<domain>) at group through a rule of its
// own; "" deletes that rule.
func (d *Driver) SetPreview(ctx context.Context, ref target.ServiceRef, group string) error {
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return err
	}
	host := naming.Preview(ref.Service, ref.Environment, c.env.Domain)
	if group == "" {
		return d.deleteRule(ctx, c, host)
	}
	return d.ensureRule(ctx, c, host, []strategy.Route{{Group: group, Weight: 1}})
}

// previewOf is the group the preview rule forwards to ("" without one).
func (d *Driver) previewOf(ctx context.Context, c *clients, ref target.ServiceRef) (string, error) {
	r, _, err := c.findRule(ctx, naming.Preview(ref.Service, ref.Environment, c.env.Domain))
	if err != nil || r == nil {
		return "", err
	}
	for _, a := range r.Actions {
		if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
			return tgNameOf(aws.ToString(a.ForwardConfig.TargetGroups[0].TargetGroupArn)), nil
		}
	}
	return "", nil
}

// WindowStats reads the group's target group figures of the window from
// CloudWatch (AWS/ApplicationELB, one-minute periods): RequestCount,
// HTTPCode_Target_5XX_Count, TargetResponseTime p50 and p99 (the largest
// minute's, as strategy.Merge does for groups).
func (d *Driver) WindowStats(ctx context.Context, ref target.ServiceRef, group string, window time.Duration) (strategy.WindowStats, error) {
	caps := Capabilities()
	if window < caps.StatsWindowMin || window > caps.StatsWindowMax {
		return strategy.WindowStats{}, fmt.Errorf("statistics window %s: CloudWatch's load balancer figures cover %s to %s", window, caps.StatsWindowMin, caps.StatsWindowMax)
	}
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return strategy.WindowStats{}, err
	}
	arn, err := c.targetGroup(ctx, group)
	if err != nil || arn == "" {
		return strategy.WindowStats{}, err
	}
	_, tgDim, _ := strings.Cut(arn, ":targetgroup/")
	_, lbDim, _ := strings.Cut(c.env.ListenerARN, ":listener/")
	lbDim = lbDim[:strings.LastIndex(lbDim, "/")]
	dims := []cwtypes.Dimension{{Name: aws.String("TargetGroup"), Value: aws.String("targetgroup/" + tgDim)}, {Name: aws.String("LoadBalancer"), Value: aws.String(lbDim)}}
	q := func(id, metric, stat string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(id), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(60), Stat: aws.String(stat),
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String(metric), Dimensions: dims}}}
	}
	now := time.Now()
	out, err := c.cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now.Add(-window).Truncate(time.Minute)),
		EndTime: aws.Time(now.Add(time.Minute).Truncate(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{q("requests", "RequestCount", "Sum"), q("errors", "HTTPCode_Target_5XX_Count", "Sum"),
			q("p50", "TargetResponseTime", "p50"), q("p99", "TargetResponseTime", "p99")}})
	if err != nil {
		return strategy.WindowStats{}, fmt.Errorf("window statistics of %s: %w", group, err)
	}
	var ws strategy.WindowStats
	for _, r := range out.MetricDataResults {
		for _, v := range r.Values {
			switch aws.ToString(r.Id) {
			case "requests":
				ws.Requests += int64(v)
			case "errors":
				ws.Errors += int64(v)
			case "p50":
				ws.P50 = max(ws.P50, time.Duration(v*float64(time.Second)))
			case "p99":
				ws.P99 = max(ws.P99, time.Duration(v*float64(time.Second)))
			}
		}
	}
	return ws, nil
}

// Counters: the load balancer's totals are not kept by the driver.
func (d *Driver) Counters(context.Context, target.ServiceRef) (target.Counters, error) {
	return target.Counters{}, fmt.Errorf("request totals: %w", target.ErrUnsupported)
}
