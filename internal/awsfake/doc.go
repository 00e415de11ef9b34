// Package awsfake is an HTTP-boundary fake of the AWS APIs Runway calls
// (ECS, Elastic Load Balancing v2, CloudWatch, CloudWatch Logs, STS and
// Secrets Manager for the aws driver, ECR's credentials for runway build),
// served on loopback, so that the real aws-sdk-go-v2 clients — their
// serializers, retries and waiters — run unchanged against it (each
// client's BaseEndpoint is Fake.URL).
//
// Read in this order:
//
//   - model.go: the API models (models/*.min.json, from npm aws-sdk, Apache
//     2.0) and Model.Conform, which checks every request and every response
//     the fake sends: unknown members, missing required members, types;
//     enums.go adds the enums (from the Go SDK) and numeric ranges (from the
//     AWS API reference) the minified models leave out.
//   - protocol.go: the wire protocols (awsJson1_1, awsQuery, rpcv2Cbor).
//   - server.go: dispatch, throttling, the refusals kept for tests.
//   - state.go: what AWS does by itself: tasks PROVISIONING → PENDING →
//     RUNNING → STOPPED, the service scheduler (replacing, scaling, the
//     circuit breaker, rollout state), health checks, draining.
//   - handlers.go: the operations; elb.go: target groups, rules and the load
//     balancer's data plane; observe.go: CloudWatch figures and log events.
//   - secretsmanager.go: secrets and their versions (by ClientRequestToken,
//     with staging labels), read by tasks when they start; ecr.go: ECR's
//     credentials, those of a real local registry.
//   - runtime.go: the containers tasks run (the fake's own test image).
//
// Every behaviour that AWS documents and the fake imitates is listed with
// its documentation page in docs/aws-fake.md.
package awsfake
