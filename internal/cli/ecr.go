package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/moby/moby/api/types/registry"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/container"
)

// pushECR pushes img to the ECR registry of an aws environment and returns
// the digest reference the release pins. The credentials are ECR's own: a
// GetAuthorizationToken call with the AWS SDK's credentials of the user
// (profile, SSO, environment, role) in the environment's region, whose
// token is a short-lived user and password for the registry it names
// (proxyEndpoint). The image must be under that registry (the
// environment's registry setting is the account's ECR host and the
// project's prefix, as the service roots name their repositories).
func pushECR(ctx context.Context, eng *container.Engine, e *config.Environment, img string) (string, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(e.Region))
	if err != nil {
		return "", fmt.Errorf("aws configuration of environment %s: %w", e.Name, err)
	}
	out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return "", fmt.Errorf("ECR credentials for environment %s (GetAuthorizationToken with your AWS credentials; set AWS_PROFILE or log in with aws sso login): %w", e.Name, err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil || out.AuthorizationData[0].ProxyEndpoint == nil {
		return "", fmt.Errorf("ECR credentials for environment %s: GetAuthorizationToken answered no token", e.Name)
	}
	ad := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(*ad.AuthorizationToken)
	user, password, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok {
		return "", fmt.Errorf("ECR credentials for environment %s: the token is not base64 of user:password", e.Name)
	}
	host := *ad.ProxyEndpoint
	host = strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	host = strings.TrimSuffix(host, "/")
	if got := container.RegistryHost(img); got != host {
		return "", fmt.Errorf("image %s is not under the ECR registry of environment %s's account (%s): set registry = \"%s/<project>\" in the environment (the service roots' repository_url) and drop the image's registry", img, e.Name, host, host)
	}
	return eng.PushAs(ctx, img, registry.AuthConfig{Username: user, Password: password, ServerAddress: host}, io.Discard)
}
