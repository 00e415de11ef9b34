// Command fakeaws serves the fake AWS (internal/awsfake) on loopback for
// trying the aws target without an AWS account: it bootstraps what the
// generated Terraform would create in each environment named, writes the
// file `runway server --aws-outputs` reads, and prints the endpoint to give
// the server as AWS_ENDPOINT_URL. It is a test harness, never part of the
// runway binary.
//
//	go run ./internal/tools/fakeaws -env staging -domain example.com -outputs aws-outputs.json
//
// -secrets names secret keys to make Secrets Manager containers for (as
// the service roots do; environment-wide in the outputs), -registry a
// local registry (host:port, with -registry-user and -registry-password)
// that ECR's GetAuthorizationToken hands out, for runway build.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/runwayhq/runway/internal/awsfake"
	"github.com/runwayhq/runway/internal/driver/ecs"
)

func main() {
	envs := flag.String("env", "staging", "environments to bootstrap, comma-separated")
	domain := flag.String("domain", "", "the project's domain")
	outputs := flag.String("outputs", "aws-outputs.json", "file to write the environments' outputs to")
	scale := flag.Float64("time-scale", 10, "how much faster than AWS tasks start and health checks run")
	secretKeys := flag.String("secrets", "", "secret keys to make Secrets Manager containers for, comma-separated")
	registry := flag.String("registry", "", "registry (host:port) ECR's GetAuthorizationToken names")
	registryUser := flag.String("registry-user", "", "the registry's user")
	registryPassword := flag.String("registry-password", "", "the registry's password")
	flag.Parse()
	f, err := awsfake.New(awsfake.Options{TimeScale: *scale, ConsistencyDelay: 500e6,
		Registry: *registry, RegistryUser: *registryUser, RegistryPassword: *registryPassword})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	out := map[string]ecs.Env{}
	for _, name := range strings.Split(*envs, ",") {
		st := f.Bootstrap(name)
		e := ecs.Env{Region: st.Region, Account: st.Account, Domain: *domain, Cluster: st.ClusterName, ListenerARN: st.ListenerARN,
			VpcID: st.VpcID, SubnetIDs: st.SubnetIDs, ServiceOutputs: ecs.ServiceOutputs{SecurityGroupID: st.SecurityGroupID, ExecutionRoleARN: st.ExecutionRoleARN,
				TaskRoleARN: st.TaskRoleARN, LogGroup: st.LogGroupName}}
		for _, k := range strings.Split(*secretKeys, ",") {
			if k = strings.TrimSpace(k); k != "" {
				if e.SecretARNs == nil {
					e.SecretARNs = map[string]string{}
				}
				e.SecretARNs[k] = f.CreateSecret("runway/" + name + "/" + k)
			}
		}
		out[name] = e
	}
	data, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(*outputs, append(data, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("fake AWS (not AWS: internal/awsfake) at %s, load balancer at %s; outputs in %s\n", f.URL(), f.LoadBalancerAddr(), *outputs)
	fmt.Printf("start the server with: AWS_ENDPOINT_URL=%s AWS_ACCESS_KEY_ID=fake AWS_SECRET_ACCESS_KEY=fake AWS_REGION=%s runway server --aws-outputs %s\n", f.URL(), f.Region(), *outputs)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	if v := f.Violations(); len(v) > 0 {
		fmt.Fprintf(os.Stderr, "requests the AWS models refused: %q\n", v)
		os.Exit(1)
	}
}
