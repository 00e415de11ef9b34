package awsfake

import (
	"encoding/base64"
	"time"
)

// ECR: GetAuthorizationToken only. Images are pushed to a real registry
// (Options.Registry, such as podmantest's registry with basic auth): the
// token the fake hands out is that registry's user and password, and its
// proxyEndpoint that registry, as ECR's are the account's registry and a
// 12-hour password for user AWS.
func ecrGetAuthorizationToken(s *state, _ map[string]any) (map[string]any, *APIError) {
	o := s.f.opt
	host, user, password := o.Registry, o.RegistryUser, o.RegistryPassword
	if host == "" {
		host = o.Account + ".dkr.ecr." + o.Region + ".amazonaws.com"
	}
	if user == "" {
		user, password = "AWS", "fake-ecr-password"
	}
	return map[string]any{"authorizationData": []map[string]any{{
		"authorizationToken": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
		"proxyEndpoint":      "https://" + host,
		"expiresAt":          time.Now().Add(12 * time.Hour),
	}}}, nil
}
