package awsfake_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/runwayhq/runway/internal/awsfake"
)

func start(t *testing.T, opt awsfake.Options) (*awsfake.Fake, aws.Config) {
	t.Helper()
	f, err := awsfake.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	cfg := aws.Config{Region: f.Region(), BaseEndpoint: aws.String(f.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "secretfake", "")}
	return f, cfg
}

// TestSDKRoundTrip: the real SDK clients, their serializers and the ECS
// ServicesStable waiter run against the fake; a service behind a target
// group turns stable once its task is healthy, requests through the load
// balancer are counted by CloudWatch, and no request was refused.
func TestSDKRoundTrip(t *testing.T) {
	f, cfg := start(t, awsfake.Options{TimeScale: 50, ConsistencyDelay: 200 * time.Millisecond, ThrottleEvery: 7})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	static := f.Bootstrap("staging")
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != f.Account() {
		t.Fatalf("GetCallerIdentity: %v, %v", id, err)
	}
	lb := elb.NewFromConfig(cfg)
	tg, err := lb.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("web-01abc"), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(8080), VpcId: aws.String(static.VpcID), TargetType: elbtypes.TargetTypeEnumIp, HealthCheckPath: aws.String("/healthz"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthyThresholdCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	tgArn := tg.TargetGroups[0].TargetGroupArn
	if _, err := lb.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: aws.String(static.ListenerARN), Priority: aws.Int32(10),
		Conditions: []elbtypes.RuleCondition{{Field: aws.String("host-header"), HostHeaderConfig: &elbtypes.HostHeaderConditionConfig{Values: []string{"web.staging.example.com"}}}},
		Actions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{
			TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: tgArn, Weight: aws.Int32(999)}}}}}}); err != nil {
		t.Fatal(err)
	}
	ec := ecs.NewFromConfig(cfg)
	td, err := ec.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"), NetworkMode: ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate}, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("fake/serve@sha256:00"), Essential: aws.Bool(true),
			Command: []string{"serve"}, PortMappings: []ecstypes.PortMapping{{ContainerPort: aws.Int32(8080)}},
			LogConfiguration: &ecstypes.LogConfiguration{LogDriver: ecstypes.LogDriverAwslogs, Options: map[string]string{
				"awslogs-group": static.LogGroupName, "awslogs-region": f.Region(), "awslogs-stream-prefix": "web"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(static.ClusterName), ServiceName: aws.String("web-01abc"),
		TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(2), LaunchType: ecstypes.LaunchTypeFargate,
		LoadBalancers:        []ecstypes.LoadBalancer{{TargetGroupArn: tgArn, ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}},
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: static.SubnetIDs}}}); err != nil {
		t.Fatal(err)
	}
	w := ecs.NewServicesStableWaiter(ec, func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second })
	// Right after create the service is MISSING (eventual consistency),
	// which the waiter's rule treats as a failure: retry until seen.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = w.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(static.ClusterName), Services: []string{"web-01abc"}}, 30*time.Second)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("ServicesStable: %v", err)
	}
	out, err := ec.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(static.ClusterName), Services: []string{"web-01abc"}})
	if err != nil || len(out.Services) != 1 || aws.ToString(out.Services[0].Deployments[0].Status) != "PRIMARY" {
		t.Fatalf("DescribeServices: %+v, %v", out, err)
	}
	// Stable is not healthy: wait for the targets.
	for {
		th, err := lb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tgArn})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range th.TargetHealthDescriptions {
			if d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets not healthy: %+v", th.TargetHealthDescriptions)
		}
		<-time.After(20 * time.Millisecond)
	}
	for range 10 {
		req, _ := http.NewRequest(http.MethodGet, "http://"+f.LoadBalancerAddr()+"/", nil)
		req.Host = "web.staging.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "task ") {
			t.Fatalf("through the load balancer: %s %q", resp.Status, body)
		}
	}
	now := time.Now()
	md, err := cloudwatch.NewFromConfig(cfg).GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now.Add(-2 * time.Minute)), EndTime: aws.Time(now.Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("requests"), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(60), Stat: aws.String("Sum"),
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("RequestCount"), Dimensions: []cwtypes.Dimension{
				{Name: aws.String("TargetGroup"), Value: aws.String((*tgArn)[strings.Index(*tgArn, "targetgroup/"):])}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, v := range md.MetricDataResults[0].Values {
		sum += v
	}
	if sum != 10 {
		t.Errorf("RequestCount sum %v, want 10", sum)
	}
	if v := f.Violations(); len(v) > 0 {
		t.Errorf("requests refused by the models: %q", v)
	}
}

// TestModelRefuses: a weight out of range (the SDK does not check ranges),
// an unknown member and a missing required member are refused with the
// service's validation error, and recorded.
func TestModelRefuses(t *testing.T) {
	f, cfg := start(t, awsfake.Options{})
	ctx := context.Background()
	static := f.Bootstrap("staging")
	lb := elb.NewFromConfig(cfg)
	_, err := lb.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: aws.String(static.ListenerARN), Priority: aws.Int32(10),
		Conditions: []elbtypes.RuleCondition{{Field: aws.String("host-header"), HostHeaderConfig: &elbtypes.HostHeaderConditionConfig{Values: []string{"x"}}}},
		Actions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{
			TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: aws.String("arn:x"), Weight: aws.Int32(1000)}}}}}})
	if err == nil || !strings.Contains(err.Error(), "ValidationError") || !strings.Contains(err.Error(), "1000 outside 0 to 999") {
		t.Errorf("weight 1000: %v, want a ValidationError naming the range", err)
	}
	_, err = ecs.NewFromConfig(cfg).CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("x"), LaunchType: "SPOT"})
	if err == nil || !strings.Contains(err.Error(), `launchType: "SPOT" is not one of`) {
		t.Errorf("an unknown enum value: %v", err)
	}
	raw := func(target, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, f.URL(), strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDFAKE/20261201/us-east-2/ecs/aws4_request")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := raw("AmazonEC2ContainerServiceV20141113.CreateService", `{"serviceName":"x","desiredCont":1}`); code != 400 || !strings.Contains(body, `unknown member \"desiredCont\"`) {
		t.Errorf("unknown member: %d %s", code, body)
	}
	if code, body := raw("AmazonEC2ContainerServiceV20141113.CreateService", `{"desiredCount":1}`); code != 400 || !strings.Contains(body, `missing required member \"serviceName\"`) {
		t.Errorf("missing required member: %d %s", code, body)
	}
	if code, body := raw("AmazonEC2ContainerServiceV20141113.CreateService", `{"serviceName":"x","desiredCount":"one"}`); code != 400 || !strings.Contains(body, "want an integer") {
		t.Errorf("wrong type: %d %s", code, body)
	}
	if n := len(f.Violations()); n != 5 {
		t.Errorf("%d violations recorded, want 5: %q", n, f.Violations())
	}
}
