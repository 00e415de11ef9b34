package ecs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/target"
)

// TestPutSecretContainers: a service's secret goes into that service's
// container of the key; an environment-wide one into every service's
// container of the key but those of services with a value of their own;
// writing a version again changes nothing; the environment's defaults
// have containers too; a container the outputs name
// but AWS lacks is an error that names the key, never the value.
func TestPutSecretContainers(t *testing.T) {
	fa := startFake(t, "staging")
	web, api := fa.f.CreateSecret("runway/staging/web/DATABASE_URL"), fa.f.CreateSecret("runway/staging/api/DATABASE_URL")
	e := fa.opt.Environments["staging"]
	e.Services = map[string]ServiceOutputs{"web": {SecretARNs: map[string]string{"DATABASE_URL": web}},
		"api": {SecretARNs: map[string]string{"DATABASE_URL": api, "STRIPE_KEY": api + "-missing"}}}
	shared := fa.f.CreateSecret("runway/staging/SHARED_TOKEN")
	e.SecretARNs = map[string]string{"SHARED_TOKEN": shared} // the environment's defaults
	fa.opt.Environments["staging"] = e
	d := New(fa.opt)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const id1, id2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	n, err := d.PutSecret(ctx, "staging", Secret{Key: "DATABASE_URL", Service: "web", Version: 1, VersionID: id1, Value: []byte("own value")}, nil)
	if err != nil || n != 1 {
		t.Fatalf("web's own secret: %d containers, %v", n, err)
	}
	n, err = d.PutSecret(ctx, "staging", Secret{Key: "DATABASE_URL", Version: 1, VersionID: id2, Value: []byte("shared value")}, map[string]bool{"web": true})
	if err != nil || n != 1 {
		t.Fatalf("the environment-wide secret: %d containers, %v", n, err)
	}
	if got := fa.f.SecretVersions(web); len(got) != 1 || got[0] != id1 {
		t.Errorf("web's container holds %v, want only its own version", got)
	}
	if got := fa.f.SecretVersions(api); len(got) != 1 || got[0] != id2 {
		t.Errorf("api's container holds %v, want the environment-wide version", got)
	}
	if _, err := d.PutSecret(ctx, "staging", Secret{Key: "DATABASE_URL", Version: 1, VersionID: id2, Value: []byte("shared value")}, map[string]bool{"web": true}); err != nil {
		t.Errorf("the same version again: %v", err)
	}
	// A key only the environment's defaults have a container of (services
	// without outputs of their own use them).
	if n, err := d.PutSecret(ctx, "staging", Secret{Key: "SHARED_TOKEN", Version: 1, VersionID: id1, Value: []byte("token")}, nil); err != nil || n != 1 {
		t.Errorf("a secret of the environment's defaults: %d containers, %v", n, err)
	}
	if got := fa.f.SecretVersions(shared); len(got) != 1 {
		t.Errorf("the defaults' container holds %v", got)
	}
	_, err = d.PutSecret(ctx, "staging", Secret{Key: "STRIPE_KEY", Service: "api", Version: 1, VersionID: id1, Value: []byte("sk_live_value")}, nil)
	if err == nil || !strings.Contains(err.Error(), "write secret STRIPE_KEY v1 into Secrets Manager") || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("a missing container: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "sk_live_value") {
		t.Error("the error carries the value")
	}
}

// TestValidateSecrets: a release naming secrets is refused before it
// starts when the server delivers none, or when a key has no container.
func TestValidateSecrets(t *testing.T) {
	fa := startFake(t, "staging")
	ref := target.ServiceRef{Environment: "staging", Service: "web"}
	spec := fa.spec(ref)
	spec.Secrets = []string{"DATABASE_URL", "API_KEY"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := New(fa.opt).Validate(ctx, ref, spec)
	if err == nil || !strings.Contains(err.Error(), "this server delivers none to target aws") || !strings.Contains(err.Error(), "secret API_KEY (variable API_KEY) has no Secrets Manager container") {
		t.Errorf("without a secrets source: %v", err)
	}
	opt := fa.opt
	opt.Secrets = func(context.Context, string) ([]Secret, error) { return nil, nil }
	err = New(opt).Validate(ctx, ref, spec)
	if err == nil || strings.Contains(err.Error(), "delivers none") || !strings.Contains(err.Error(), "secret API_KEY") || strings.Contains(err.Error(), "secret DATABASE_URL") {
		t.Errorf("with a source, API_KEY without a container: %v", err)
	}
}
