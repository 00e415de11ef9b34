package ecs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// A target group's name: 1-32 letters, digits and hyphens, not starting or
// ending with a hyphen (CreateTargetGroup).
var tgName = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$`)

const container = "app"

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// targetGroup returns the group's target group ARN ("" when missing).
func (c *clients) targetGroup(ctx context.Context, group string) (string, error) {
	out, err := c.elb.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{group}})
	if apiCode(err) == "TargetGroupNotFound" {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("describe target group %s: %w", group, err)
	}
	return aws.ToString(out.TargetGroups[0].TargetGroupArn), nil
}

// service returns the group's ECS service, nil when missing or INACTIVE.
func (c *clients) service(ctx context.Context, group string) (*ecstypes.Service, error) {
	out, err := c.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(c.env.Cluster), Services: []string{group},
		Include: []ecstypes.ServiceField{ecstypes.ServiceFieldTags}})
	if err != nil {
		return nil, fmt.Errorf("describe service %s: %w", group, err)
	}
	for _, s := range out.Services {
		if aws.ToString(s.Status) != "INACTIVE" {
			return &s, nil
		}
	}
	return nil, nil
}

func (d *Driver) taskDefinition(ctx context.Context, c *clients, ref target.ServiceRef, family, release string, spec *config.Service) (string, error) {
	if out, err := c.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(family)}); err == nil {
		return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
	}
	if spec == nil {
		return "", fmt.Errorf("group %s: the release %s is unknown to this server and has no task definition", family, release)
	}
	env := []ecstypes.KeyValuePair{{Name: aws.String("PORT"), Value: aws.String(strconv.Itoa(spec.Port))},
		{Name: aws.String("RUNWAY_RELEASE"), Value: aws.String(release)}, {Name: aws.String("RUNWAY_SERVICE"), Value: aws.String(ref.Service)},
		{Name: aws.String("RUNWAY_ENVIRONMENT"), Value: aws.String(ref.Environment)}}
	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, ecstypes.KeyValuePair{Name: aws.String(k), Value: aws.String(spec.Env[k])})
	}
	so := c.env.Service(ref.Service)
	vars := spec.SecretVars()
	refs, err := d.releaseSecrets(ctx, c, ref.Service, release, vars)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(vars))
	for v := range vars {
		names = append(names, v)
	}
	sort.Strings(names)
	var secrets []ecstypes.Secret
	for _, v := range names {
		secrets = append(secrets, ecstypes.Secret{Name: aws.String(v), ValueFrom: aws.String(refs[v])})
	}
	cpu, mem := fargateSize(spec.Resources)
	cd := ecstypes.ContainerDefinition{Name: aws.String(container), Image: aws.String(spec.Image), Essential: aws.Bool(true),
		Command: spec.Command, Environment: env, Secrets: secrets,
		PortMappings: []ecstypes.PortMapping{{ContainerPort: aws.Int32(int32(spec.Port)), Protocol: ecstypes.TransportProtocolTcp}},
		StopTimeout:  aws.Int32(int32(min(120, max(2, int(spec.Hooks.StopTimeout.Seconds()))))),
		LogConfiguration: &ecstypes.LogConfiguration{LogDriver: ecstypes.LogDriverAwslogs, Options: map[string]string{
			"awslogs-group": so.LogGroup, "awslogs-region": c.env.Region, "awslogs-stream-prefix": family}}}
	out, err := c.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(family),
		NetworkMode: ecstypes.NetworkModeAwsvpc, RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		Cpu: aws.String(cpu), Memory: aws.String(mem), ExecutionRoleArn: aws.String(so.ExecutionRoleARN), TaskRoleArn: aws.String(so.TaskRoleARN),
		ContainerDefinitions: []ecstypes.ContainerDefinition{cd},
		Tags:                 tags(ref, release)})
	if err != nil {
		return "", fmt.Errorf("register task definition %s: %w", family, err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}

// fargateSize is the smallest Fargate size holding the manifest's limits
// (256 CPU units and 512 MiB without them).
func fargateSize(r config.Resources) (cpu, mem string) {
	sizes := []struct{ cpu, minMem int }{{256, 512}, {512, 1024}, {1024, 2048}, {2048, 4096}, {4096, 8192}}
	for _, s := range sizes {
		if float64(s.cpu) >= r.CPU*1024 && s.minMem*4 >= r.MemoryMB {
			m := max(s.minMem, (r.MemoryMB+1023)/1024*1024)
			return strconv.Itoa(s.cpu), strconv.Itoa(m)
		}
	}
	return "4096", strconv.Itoa(max(8192, r.MemoryMB))
}

func tags(ref target.ServiceRef, release string) []ecstypes.Tag {
	return []ecstypes.Tag{{Key: aws.String("runway:project"), Value: aws.String(ref.Project)},
		{Key: aws.String("runway:environment"), Value: aws.String(ref.Environment)},
		{Key: aws.String("runway:service"), Value: aws.String(ref.Service)}, {Key: aws.String("runway:release"), Value: aws.String(release)}}
}

// EnsureGroup creates the group's target group (deregistration delay from
// the release's drain), its own listener rule, task definition and ECS
// service, each found first so that a call made again after a crash
// creates nothing twice; then sets the count.
func (d *Driver) EnsureGroup(ctx context.Context, g target.GroupSpec) error {
	if !tgName.MatchString(g.Group) {
		return fmt.Errorf("group name %q: a target group's name has 1 to 32 letters, digits and hyphens", g.Group)
	}
	c, err := d.clients(ctx, g.Ref.Environment)
	if err != nil {
		return err
	}
	sv, err := c.service(ctx, g.Group)
	if err != nil {
		return err
	}
	if sv != nil {
		if aws.ToString(sv.Status) == "DRAINING" {
			return fmt.Errorf("group %s is being deleted", g.Group)
		}
		if int(sv.DesiredCount) == g.Count {
			return nil
		}
		return d.ScaleGroup(ctx, g.Ref, g.Group, g.Count, 0)
	}
	if g.Spec == nil {
		return fmt.Errorf("group %s: missing, and its release %s is unknown to this server", g.Group, g.Release)
	}
	tgArn, err := c.targetGroup(ctx, g.Group)
	if err != nil {
		return err
	}
	if tgArn == "" {
		h := g.Spec.Health
		path := h.Path
		if h.Kind != "" && h.Kind != "http" || path == "" {
			path = "/"
		}
		out, err := c.elb.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(g.Group), Protocol: elbtypes.ProtocolEnumHttp,
			Port: aws.Int32(int32(g.Spec.Port)), VpcId: aws.String(c.env.VpcID), TargetType: elbtypes.TargetTypeEnumIp,
			HealthCheckPath: aws.String(path), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(4),
			HealthyThresholdCount: aws.Int32(int32(min(10, max(2, h.HealthyThreshold)))), UnhealthyThresholdCount: aws.Int32(int32(min(10, max(2, h.UnhealthyThreshold)))),
			Tags: []elbtypes.Tag{{Key: aws.String("runway:service"), Value: aws.String(g.Ref.String())}, {Key: aws.String("runway:release"), Value: aws.String(g.Release)}}})
		if err != nil {
			return fmt.Errorf("create target group %s: %w", g.Group, err)
		}
		tgArn = aws.ToString(out.TargetGroups[0].TargetGroupArn)
	}
	if _, err := c.elb.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tgArn),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String(strconv.Itoa(int(drainSeconds(g.Spec))))}}}); err != nil {
		return fmt.Errorf("set the drain of target group %s: %w", g.Group, err)
	}
	if err := d.ensureRule(ctx, c, c.groupHost(g.Ref, g.Group), []strategy.Route{{Group: g.Group, Weight: 1}}); err != nil {
		return err
	}
	td, err := d.taskDefinition(ctx, c, g.Ref, g.Group, g.Release, g.Spec)
	if err != nil {
		return err
	}
	_, err = c.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(c.env.Cluster), ServiceName: aws.String(g.Group),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(int32(g.Count)), LaunchType: ecstypes.LaunchTypeFargate,
		ClientToken:   aws.String(token(32, "service", g.Ref.String(), g.Group)),
		LoadBalancers: []ecstypes.LoadBalancer{{TargetGroupArn: aws.String(tgArn), ContainerName: aws.String(container), ContainerPort: aws.Int32(int32(g.Spec.Port))}},
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: c.env.SubnetIDs,
			SecurityGroups: []string{c.env.Service(g.Ref.Service).SecurityGroupID}, AssignPublicIp: ecstypes.AssignPublicIpDisabled}},
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: false},
			MaximumPercent: aws.Int32(200), MinimumHealthyPercent: aws.Int32(100)},
		HealthCheckGracePeriodSeconds: aws.Int32(int32(g.Spec.Health.StartPeriod.Seconds())),
		Tags:                          tags(g.Ref, g.Release), PropagateTags: ecstypes.PropagateTagsService})
	if err != nil {
		return fmt.Errorf("create service %s: %w", g.Group, err)
	}
	return nil
}

// ScaleGroup sets the service's desired count; ECS deregisters the tasks it
// stops from the target group, which drains them for the group's
// deregistration delay.
func (d *Driver) ScaleGroup(ctx context.Context, ref target.ServiceRef, group string, count int, _ time.Duration) error {
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return err
	}
	sv, err := c.service(ctx, group)
	if err != nil {
		return err
	}
	if sv == nil || aws.ToString(sv.Status) != "ACTIVE" {
		if count == 0 {
			return nil
		}
		return fmt.Errorf("scale group %s: it does not exist", group)
	}
	if _, err := c.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(c.env.Cluster), Service: aws.String(group),
		DesiredCount: aws.Int32(int32(count))}); err != nil {
		return fmt.Errorf("scale group %s: %w", group, err)
	}
	return nil
}

// ObserveGroup: healthy are targets the load balancer finds healthy,
// unhealthy those it finds unhealthy, starting the tasks not yet healthy;
// terminated the deployment's failed tasks (crashes, failed health checks:
// what the circuit breaker counts).
func (d *Driver) ObserveGroup(ctx context.Context, ref target.ServiceRef, group string) (target.GroupStatus, error) {
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return target.GroupStatus{}, err
	}
	sv, err := c.service(ctx, group)
	if err != nil || sv == nil || aws.ToString(sv.Status) != "ACTIVE" {
		return target.GroupStatus{}, err
	}
	st := target.GroupStatus{Exists: true, Desired: int(sv.DesiredCount)}
	for _, dep := range sv.Deployments {
		st.Terminated += int(dep.FailedTasks)
	}
	running := int(sv.RunningCount)
	if len(sv.LoadBalancers) > 0 {
		th, err := c.elb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: sv.LoadBalancers[0].TargetGroupArn})
		if err != nil {
			return target.GroupStatus{}, fmt.Errorf("target health of %s: %w", group, err)
		}
		for _, t := range th.TargetHealthDescriptions {
			switch t.TargetHealth.State {
			case elbtypes.TargetHealthStateEnumHealthy:
				st.Healthy++
			case elbtypes.TargetHealthStateEnumUnhealthy:
				st.Unhealthy++
			}
		}
	} else {
		st.Healthy = running
	}
	st.Starting = max(0, running+int(sv.PendingCount)-st.Healthy-st.Unhealthy)
	return st, nil
}

// DeleteGroup takes the group out of the service's rule, scales it to 0 and
// waits (at most drain) for the load balancer to drain its targets, then
// deletes the service, its rule, target group and task definition.
func (d *Driver) DeleteGroup(ctx context.Context, ref target.ServiceRef, group string, drain time.Duration) error {
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return err
	}
	routes, err := d.Routes(ctx, ref)
	if err != nil {
		return err
	}
	if keep, had := strategy.Without(routes, group); had {
		if err := d.SetRoutes(ctx, ref, keep); err != nil {
			return err
		}
	}
	if pg, err := d.previewOf(ctx, c, ref); err != nil {
		return err
	} else if pg == group {
		if err := d.SetPreview(ctx, ref, ""); err != nil {
			return err
		}
	}
	tgArn, err := c.targetGroup(ctx, group)
	if err != nil {
		return err
	}
	sv, err := c.service(ctx, group)
	if err != nil {
		return err
	}
	if sv != nil {
		if aws.ToString(sv.Status) == "ACTIVE" {
			if err := d.ScaleGroup(ctx, ref, group, 0, drain); err != nil {
				return err
			}
		}
		if tgArn != "" {
			if err := d.wait(ctx, drain, func() (bool, error) {
				th, err := c.elb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn)})
				return err == nil && len(th.TargetHealthDescriptions) == 0, err
			}); err != nil {
				return fmt.Errorf("drain group %s: %w", group, err)
			}
		}
		if _, err := c.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String(c.env.Cluster), Service: aws.String(group), Force: aws.Bool(true)}); err != nil && apiCode(err) != "ServiceNotFoundException" {
			return fmt.Errorf("delete service %s: %w", group, err)
		}
		if err := d.wait(ctx, 10*time.Minute, func() (bool, error) {
			sv, err := c.service(ctx, group)
			return sv == nil, err
		}); err != nil {
			return fmt.Errorf("wait for service %s to stop: %w", group, err)
		}
	}
	if err := d.deleteRule(ctx, c, c.groupHost(ref, group)); err != nil {
		return err
	}
	if tgArn != "" {
		if _, err := c.elb.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgArn)}); err != nil {
			return fmt.Errorf("delete target group %s: %w", group, err)
		}
	}
	if _, err := c.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(group + ":1")}); err != nil && apiCode(err) != "ClientException" {
		return fmt.Errorf("deregister task definition %s: %w", group, err)
	}
	return nil
}

// ListGroups lists the cluster's services tagged with the service's
// project, environment and name.
func (d *Driver) ListGroups(ctx context.Context, ref target.ServiceRef) ([]target.GroupInfo, error) {
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return nil, err
	}
	var arns []string
	p := ecs.NewListServicesPaginator(c.ecs, &ecs.ListServicesInput{Cluster: aws.String(c.env.Cluster)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list services: %w", err)
		}
		arns = append(arns, page.ServiceArns...)
	}
	var out []target.GroupInfo
	for i := 0; i < len(arns); i += 10 {
		res, err := c.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(c.env.Cluster), Services: arns[i:min(i+10, len(arns))],
			Include: []ecstypes.ServiceField{ecstypes.ServiceFieldTags}})
		if err != nil {
			return nil, fmt.Errorf("describe services: %w", err)
		}
		for _, s := range res.Services {
			t := map[string]string{}
			for _, tg := range s.Tags {
				t[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
			if aws.ToString(s.Status) != "ACTIVE" || t["runway:project"] != ref.Project || t["runway:environment"] != ref.Environment || t["runway:service"] != ref.Service {
				continue
			}
			name := aws.ToString(s.ServiceName)
			st, err := d.ObserveGroup(ctx, ref, name)
			if err != nil {
				return nil, err
			}
			out = append(out, target.GroupInfo{Name: name, Release: t["runway:release"], Status: st})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// tgNameOf is the name in a target group's ARN
// (arn:...:targetgroup/<name>/<id>).
func tgNameOf(arn string) string {
	_, rest, _ := strings.Cut(arn, ":targetgroup/")
	name, _, _ := strings.Cut(rest, "/")
	return name
}
