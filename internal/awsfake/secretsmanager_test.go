package awsfake_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/runwayhq/runway/internal/awsfake"
)

// TestSecretsManager: the real SDK client against the fake's Secrets
// Manager: a version named by its ClientRequestToken, written again with
// the same value changes nothing and with another value is refused; a new
// version takes AWSCURRENT and the one before it AWSPREVIOUS; a version is
// read back by id; a token shorter than the API allows is refused by the
// model; no value appears in what the fake records of refused requests.
func TestSecretsManager(t *testing.T) {
	f, cfg := start(t, awsfake.Options{ThrottleEvery: 5})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	arn := f.CreateSecret("runway/staging/web/DATABASE_URL")
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:"+f.Region()+":"+f.Account()+":secret:runway/staging/web/DATABASE_URL-") {
		t.Fatalf("secret ARN %s", arn)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	const v1, v2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	put := func(token, value string) (*secretsmanager.PutSecretValueOutput, error) {
		return sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(token), SecretString: aws.String(value)})
	}
	if out, err := put(v1, "first value"); err != nil || aws.ToString(out.VersionId) != v1 {
		t.Fatalf("PutSecretValue v1: %+v, %v", out, err)
	}
	if _, err := put(v1, "first value"); err != nil {
		t.Fatalf("PutSecretValue v1 again, same value: %v (want it idempotent)", err)
	}
	if _, err := put(v1, "another value"); err == nil || !strings.Contains(err.Error(), "ResourceExistsException") {
		t.Fatalf("PutSecretValue v1 with another value: %v, want ResourceExistsException", err)
	}
	if _, err := put(v2, "second value"); err != nil {
		t.Fatal(err)
	}
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.VersionIdsToStages; strings.Join(got[v1], ",") != "AWSPREVIOUS" || strings.Join(got[v2], ",") != "AWSCURRENT" {
		t.Errorf("stages %v, want v1 AWSPREVIOUS and v2 AWSCURRENT", got)
	}
	for id, want := range map[string]string{v1: "first value", v2: "second value", "": "second value"} {
		in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}
		if id != "" {
			in.VersionId = aws.String(id)
		}
		got, err := sm.GetSecretValue(ctx, in)
		if err != nil || aws.ToString(got.SecretString) != want {
			t.Errorf("GetSecretValue %q: wrong value or %v", id, err)
		}
	}
	if _, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn + "x")}); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("GetSecretValue of a missing secret: %v", err)
	}
	if len(f.Violations()) != 0 {
		t.Fatalf("violations: %q", f.Violations())
	}
	if _, err := put("short", "a value that must not be recorded"); err == nil {
		t.Fatal("a ClientRequestToken of 5 characters was accepted (the API wants 32 to 64)")
	}
	vs := f.Violations()
	if len(vs) != 1 || !strings.Contains(vs[0], "ClientRequestToken") {
		t.Fatalf("violations %q, want the short token", vs)
	}
	if strings.Contains(vs[0], "must not be recorded") {
		t.Error("the violation carries the secret's value")
	}
	if got := f.SecretVersions(arn); len(got) != 2 || got[0] != v1 || got[1] != v2 {
		t.Errorf("versions %v", got)
	}
}
