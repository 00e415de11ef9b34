package awsfake

import (
	"sort"
	"strings"
	"time"
)

// Secrets Manager: secrets (the containers the generated Terraform creates)
// with versions, each named by its VersionId (the ClientRequestToken of the
// call that made it) and carrying staging labels; tasks read the versions
// their task definition's valueFrom names when they start.

type smSecret struct {
	arn, name string
	created   time.Time
	versions  map[string]*smVersion
}

type smVersion struct {
	id      string
	value   string
	stages  []string
	created time.Time
}

// CreateSecret makes a secret container without a value, as the generated
// Terraform's aws_secretsmanager_secret does, and returns its ARN (the
// name with AWS's six random characters).
func (f *Fake) CreateSecret(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.createSecret(name, time.Now()).arn
}

func (s *state) createSecret(name string, now time.Time) *smSecret {
	if sc := s.secretByID(name); sc != nil {
		return sc
	}
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	id := s.id(12)
	suffix := make([]byte, 6)
	for i := range suffix {
		suffix[i] = letters[int(id[i*2]+id[i*2+1])%len(letters)]
	}
	sc := &smSecret{arn: s.arn("secretsmanager", "secret:"+name+"-"+string(suffix)), name: name, created: now, versions: map[string]*smVersion{}}
	if s.secrets == nil {
		s.secrets = map[string]*smSecret{}
	}
	s.secrets[sc.arn] = sc
	return sc
}

// secretByID finds a secret by its ARN or name (SecretId).
func (s *state) secretByID(id string) *smSecret {
	if sc := s.secrets[id]; sc != nil {
		return sc
	}
	for _, sc := range s.secrets {
		if sc.name == id {
			return sc
		}
	}
	return nil
}

// SecretVersions lists the version ids of a secret (by ARN or name), oldest first.
func (f *Fake) SecretVersions(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	sc := f.st.secretByID(id)
	if sc == nil {
		return nil
	}
	return sc.sortedVersions()
}

func (sc *smSecret) sortedVersions() []string {
	ids := make([]string, 0, len(sc.versions))
	for id := range sc.versions {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := sc.versions[ids[i]], sc.versions[ids[j]]
		if !a.created.Equal(b.created) {
			return a.created.Before(b.created)
		}
		return ids[i] < ids[j]
	})
	return ids
}

func smNotFound(id string) *APIError {
	return apiErr(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
}

// putVersion adds a version, or answers as AWS does a token seen before:
// the same value is a no-op, another value ResourceExistsException.
func (s *state) putVersion(sc *smSecret, token, value string, stages []string, now time.Time) (*smVersion, *APIError) {
	if token == "" {
		token = requestID()
	}
	if v := sc.versions[token]; v != nil {
		if v.value != value {
			return nil, apiErr(400, "ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
		}
		return v, nil
	}
	if len(stages) == 0 {
		stages = []string{"AWSCURRENT"}
	}
	// A label is on one version at a time; the version that loses
	// AWSCURRENT gets AWSPREVIOUS (taken from whichever had it).
	var lostCurrent *smVersion
	for _, other := range sc.versions {
		for _, st := range stages {
			if indexOf(other.stages, st) >= 0 {
				other.stages = removeStage(other.stages, st)
				if st == "AWSCURRENT" {
					lostCurrent = other
				}
			}
		}
	}
	if lostCurrent != nil {
		for _, other := range sc.versions {
			other.stages = removeStage(other.stages, "AWSPREVIOUS")
		}
		lostCurrent.stages = append(lostCurrent.stages, "AWSPREVIOUS")
	}
	v := &smVersion{id: token, value: value, stages: append([]string(nil), stages...), created: now}
	sc.versions[token] = v
	return v, nil
}

func indexOf(l []string, s string) int {
	for i, e := range l {
		if e == s {
			return i
		}
	}
	return -1
}

func removeStage(l []string, s string) []string {
	if i := indexOf(l, s); i >= 0 {
		return append(l[:i:i], l[i+1:]...)
	}
	return l
}

// version finds a version by id or stage (AWSCURRENT when both are empty).
func (sc *smSecret) version(id, stage string) *smVersion {
	if id != "" {
		v := sc.versions[id]
		if v == nil || stage != "" && indexOf(v.stages, stage) < 0 {
			return nil
		}
		return v
	}
	if stage == "" {
		stage = "AWSCURRENT"
	}
	for _, v := range sc.versions {
		if indexOf(v.stages, stage) >= 0 {
			return v
		}
	}
	return nil
}

func smCreateSecret(s *state, in map[string]any) (map[string]any, *APIError) {
	name := str(in, "Name")
	if s.secretByID(name) != nil {
		return nil, apiErr(400, "ResourceExistsException", "The operation failed because the secret %s already exists.", name)
	}
	if _, ok := in["SecretBinary"]; ok {
		return nil, apiErr(400, "InvalidParameterException", "the fake keeps SecretString values only")
	}
	now := time.Now()
	sc := s.createSecret(name, now)
	out := map[string]any{"ARN": sc.arn, "Name": sc.name}
	if v, ok := in["SecretString"].(string); ok {
		ver, err := s.putVersion(sc, str(in, "ClientRequestToken"), v, nil, now)
		if err != nil {
			return nil, err
		}
		out["VersionId"] = ver.id
	}
	return out, nil
}

func smPutSecretValue(s *state, in map[string]any) (map[string]any, *APIError) {
	sc := s.secretByID(str(in, "SecretId"))
	if sc == nil {
		return nil, smNotFound(str(in, "SecretId"))
	}
	value, ok := in["SecretString"].(string)
	if !ok {
		return nil, apiErr(400, "InvalidRequestException", "You must provide either SecretString or SecretBinary (the fake keeps SecretString values only).")
	}
	v, err := s.putVersion(sc, str(in, "ClientRequestToken"), value, strs(in["VersionStages"]), time.Now())
	if err != nil {
		return nil, err
	}
	return map[string]any{"ARN": sc.arn, "Name": sc.name, "VersionId": v.id, "VersionStages": append([]string(nil), v.stages...)}, nil
}

func smGetSecretValue(s *state, in map[string]any) (map[string]any, *APIError) {
	sc := s.secretByID(str(in, "SecretId"))
	if sc == nil {
		return nil, smNotFound(str(in, "SecretId"))
	}
	v := sc.version(str(in, "VersionId"), str(in, "VersionStage"))
	if v == nil {
		return nil, apiErr(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s, VersionStage: %s", str(in, "VersionId"), str(in, "VersionStage"))
	}
	return map[string]any{"ARN": sc.arn, "Name": sc.name, "VersionId": v.id, "SecretString": v.value,
		"VersionStages": append([]string(nil), v.stages...), "CreatedDate": v.created}, nil
}

func smDescribeSecret(s *state, in map[string]any) (map[string]any, *APIError) {
	sc := s.secretByID(str(in, "SecretId"))
	if sc == nil {
		return nil, smNotFound(str(in, "SecretId"))
	}
	stages := map[string]any{}
	for id, v := range sc.versions {
		if len(v.stages) > 0 {
			stages[id] = append([]string(nil), v.stages...)
		}
	}
	return map[string]any{"ARN": sc.arn, "Name": sc.name, "CreatedDate": sc.created, "VersionIdsToStages": stages}, nil
}

// resolveSecret reads what a container definition's valueFrom names:
// arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX[:json-key:version-stage:version-id]
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html).
// The fake keeps whole values: a json-key is refused.
func (s *state) resolveSecret(valueFrom string) (string, string) {
	parts := strings.Split(valueFrom, ":")
	if len(parts) < 7 || parts[0] != "arn" || parts[2] != "secretsmanager" || parts[5] != "secret" {
		return "", "the fake resolves Secrets Manager ARNs only: " + valueFrom
	}
	arn := strings.Join(parts[:7], ":")
	var jsonKey, stage, id string
	switch len(parts) {
	case 7:
	case 10:
		jsonKey, stage, id = parts[7], parts[8], parts[9]
	default:
		return "", "malformed Secrets Manager reference " + valueFrom + " (want ARN or ARN:json-key:version-stage:version-id)"
	}
	if jsonKey != "" {
		return "", "the fake does not read JSON keys of secrets"
	}
	sc := s.secrets[arn]
	if sc == nil {
		return "", "ResourceNotFoundException: Secrets Manager can't find the specified secret " + arn
	}
	v := sc.version(id, stage)
	if v == nil {
		return "", "ResourceNotFoundException: Secrets Manager can't find the specified secret value for VersionId: " + id + ", VersionStage: " + stage
	}
	return v.value, ""
}
