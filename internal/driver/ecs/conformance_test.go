package ecs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/runwayhq/runway/internal/awsfake"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/target"
	"github.com/runwayhq/runway/internal/target/targettest"
)

const domain = "example.test"

// fakeAWS is the fake with one bootstrapped environment ("test") and the
// driver options that reach it, as `runway server` builds them from the
// environment's Terraform outputs.
type fakeAWS struct {
	f   *awsfake.Fake
	opt Options
}

func startFake(t *testing.T, env string) *fakeAWS {
	t.Helper()
	f, err := awsfake.New(awsfake.Options{TimeScale: 50, ConsistencyDelay: 200 * time.Millisecond, ThrottleEvery: 17})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.Close()
		if v := f.Violations(); len(v) > 0 {
			t.Errorf("requests the AWS models refuse: %q", v)
		}
	})
	st := f.Bootstrap(env)
	e := Env{Region: st.Region, Account: st.Account, Domain: domain, Cluster: st.ClusterName, ListenerARN: st.ListenerARN,
		VpcID: st.VpcID, SubnetIDs: st.SubnetIDs, ServiceOutputs: ServiceOutputs{SecurityGroupID: st.SecurityGroupID, ExecutionRoleARN: st.ExecutionRoleARN,
			TaskRoleARN: st.TaskRoleARN, LogGroup: st.LogGroupName,
			SecretARNs: map[string]string{"DATABASE_URL": fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:runway/%s/DATABASE_URL-AbCdEf", st.Region, st.Account, env)}}}
	return &fakeAWS{f: f, opt: Options{Environments: map[string]Env{env: e}, Poll: 50 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		AWSConfig: func(context.Context, string, Env) (aws.Config, error) {
			// The SDK's standard retryer, with its backoff capped at 50 ms
			// instead of 20 s: the fake throttles every 17th call, and the
			// suite's timings (a task of 500 ms observed running) must not
			// depend on a retry's random wait.
			return aws.Config{Region: st.Region, BaseEndpoint: aws.String(f.URL()),
				Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", ""),
				Retryer: func() aws.Retryer {
					return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 50 * time.Millisecond })
				}}, nil
		}}}
}

func (fa *fakeAWS) spec(ref target.ServiceRef, command ...string) *config.Service {
	if len(command) == 0 {
		command = []string{"serve"}
	}
	s := &config.Service{Name: ref.Service, Project: ref.Project, Environment: ref.Environment, Domain: domain, Version: "1",
		Image: "123456789012.dkr.ecr.us-east-2.amazonaws.com/web@sha256:" + fmt.Sprintf("%064d", 1), Port: 8080, Command: command,
		Health: config.Health{Kind: "http", Path: "/healthz", HealthyThreshold: 2, UnhealthyThreshold: 2}}
	s.Deploy.DrainTimeout = config.Duration{Duration: time.Second}
	s.Hooks.StopTimeout = config.Duration{Duration: 2 * time.Second}
	return s
}

func (fa *fakeAWS) get(ref target.ServiceRef, path string) (*http.Response, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+fa.f.LoadBalancerAddr()+path, nil)
	req.Host = naming.Service(ref.Service, ref.Environment, domain)
	return http.DefaultClient.Do(req)
}

// TestConformance runs the suite every target passes against the aws
// driver and the real SDK clients, on the fake AWS (throttling every 17th
// call of each operation, services and tasks invisible for 200 ms after
// their creation); the fake's data plane carries the requests.
func TestConformance(t *testing.T) {
	targettest.Run(t, func(t *testing.T) *targettest.Harness {
		fa := startFake(t, "test")
		return &targettest.Harness{
			Target:  New(fa.opt),
			Restart: func(*testing.T) target.Target { return New(fa.opt) },
			Spec:    func(_ *testing.T, ref target.ServiceRef) *config.Service { return fa.spec(ref) },
			Send: func(t *testing.T, ref target.ServiceRef, n int) {
				for i := range n {
					resp, err := fa.get(ref, "/")
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("request %d: %s", i, resp.Status)
					}
				}
			},
			Hold: func(t *testing.T, ref target.ServiceRef, _ string) <-chan struct{} {
				resp, err := fa.get(ref, "/hold")
				if err != nil {
					t.Fatalf("held request: %v", err)
				}
				ended := make(chan struct{})
				go func() {
					defer close(ended)
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}()
				t.Cleanup(func() { resp.Body.Close(); <-ended })
				return ended
			},
			Task: func(t *testing.T, ref target.ServiceRef, id string, d time.Duration, code int) (target.Task, func() int) {
				task := target.Task{ID: id, Name: "pre_deploy", Ref: ref, Release: "01JTASKRELEASE0000000000", Spec: fa.spec(ref),
					Command: []string{"exit", d.String(), fmt.Sprint(code)}}
				return task, func() int { return fa.f.TaskStarts(StartedBy(ref, id)) }
			},
		}
	})
}
