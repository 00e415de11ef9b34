package awsfake

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

type handler func(s *state, in map[string]any) (map[string]any, *APIError)

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"sts:GetCallerIdentity": func(s *state, _ map[string]any) (map[string]any, *APIError) {
			return map[string]any{"Account": s.f.opt.Account, "UserId": "AIDAFAKE", "Arn": "arn:aws:iam::" + s.f.opt.Account + ":user/runway"}, nil
		},
		"ecs:RegisterTaskDefinition":   ecsRegisterTaskDefinition,
		"ecs:DescribeTaskDefinition":   ecsDescribeTaskDefinition,
		"ecs:DeregisterTaskDefinition": ecsDeregisterTaskDefinition,
		"ecs:CreateService":            ecsCreateService,
		"ecs:DescribeServices":         ecsDescribeServices,
		"ecs:UpdateService":            ecsUpdateService,
		"ecs:DeleteService":            ecsDeleteService,
		"ecs:ListServices":             ecsListServices,
		"ecs:RunTask":                  ecsRunTask,
		"ecs:DescribeTasks":            ecsDescribeTasks,
		"ecs:ListTasks":                ecsListTasks,
		"ecs:StopTask":                 ecsStopTask,

		"elasticloadbalancingv2:CreateTargetGroup":             elbCreateTargetGroup,
		"elasticloadbalancingv2:DescribeTargetGroups":          elbDescribeTargetGroups,
		"elasticloadbalancingv2:DeleteTargetGroup":             elbDeleteTargetGroup,
		"elasticloadbalancingv2:ModifyTargetGroupAttributes":   elbModifyTargetGroupAttributes,
		"elasticloadbalancingv2:DescribeTargetGroupAttributes": elbDescribeTargetGroupAttributes,
		"elasticloadbalancingv2:DescribeTargetHealth":          elbDescribeTargetHealth,
		"elasticloadbalancingv2:CreateRule":                    elbCreateRule,
		"elasticloadbalancingv2:ModifyRule":                    elbModifyRule,
		"elasticloadbalancingv2:DeleteRule":                    elbDeleteRule,
		"elasticloadbalancingv2:DescribeRules":                 elbDescribeRules,

		"monitoring:GetMetricData": cwGetMetricData,

		"logs:FilterLogEvents":    logsFilterLogEvents,
		"logs:DescribeLogStreams": logsDescribeLogStreams,

		"secretsmanager:CreateSecret":   smCreateSecret,
		"secretsmanager:PutSecretValue": smPutSecretValue,
		"secretsmanager:GetSecretValue": smGetSecretValue,
		"secretsmanager:DescribeSecret": smDescribeSecret,

		"ecr:GetAuthorizationToken": ecrGetAuthorizationToken,
	}
}

func str(m map[string]any, k string) string { v, _ := m[k].(string); return v }
func num(m map[string]any, k string) int64  { v, _ := m[k].(int64); return v }
func asList(v any) []any                    { l, _ := v.([]any); return l }
func obj(m map[string]any, k string) map[string]any {
	v, _ := m[k].(map[string]any)
	return v
}
func strs(v any) []string {
	var out []string
	for _, e := range asList(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func invalid(format string, a ...any) *APIError {
	return apiErr(400, "InvalidParameterException", format, a...)
}

// --- ECS --------------------------------------------------------------

func (s *state) cluster(in map[string]any) (string, *APIError) {
	c := str(in, "cluster")
	if c == "" {
		c = "default"
	}
	for name, arn := range s.clusters {
		if c == name || c == arn {
			return arn, nil
		}
	}
	return "", apiErr(400, "ClusterNotFoundException", "Cluster not found.")
}

func ecsRegisterTaskDefinition(s *state, in map[string]any) (map[string]any, *APIError) {
	fam := str(in, "family")
	if len(asList(in["containerDefinitions"])) == 0 {
		return nil, apiErr(400, "ClientException", "Container list cannot be empty.")
	}
	if strs(in["requiresCompatibilities"]) != nil && strs(in["requiresCompatibilities"])[0] == "FARGATE" {
		if str(in, "networkMode") != "awsvpc" {
			return nil, apiErr(400, "ClientException", "Fargate only supports network mode 'awsvpc'.")
		}
		if str(in, "cpu") == "" || str(in, "memory") == "" {
			return nil, apiErr(400, "ClientException", "Fargate requires task definition to have 'cpu' and 'memory' defined at the task level.")
		}
	}
	td := &taskDef{family: fam, revision: len(s.taskDefs[fam]) + 1, in: in, status: "ACTIVE"}
	td.arn = s.arn("ecs", fmt.Sprintf("task-definition/%s:%d", fam, td.revision))
	s.taskDefs[fam] = append(s.taskDefs[fam], td)
	return map[string]any{"taskDefinition": td.out()}, nil
}

func (td *taskDef) out() map[string]any {
	out := map[string]any{"taskDefinitionArn": td.arn, "family": td.family, "revision": td.revision, "status": td.status,
		"compatibilities": []string{"EC2", "FARGATE"}}
	for _, k := range []string{"containerDefinitions", "networkMode", "cpu", "memory", "executionRoleArn", "taskRoleArn", "requiresCompatibilities"} {
		if v, ok := td.in[k]; ok {
			out[k] = v
		}
	}
	return out
}

func (s *state) findTaskDef(ref string) *taskDef {
	ref = strings.TrimPrefix(ref, s.arn("ecs", "task-definition/"))
	fam, rev, hasRev := strings.Cut(ref, ":")
	revs := s.taskDefs[fam]
	if !hasRev {
		for i := len(revs) - 1; i >= 0; i-- {
			if revs[i].status == "ACTIVE" {
				return revs[i]
			}
		}
		return nil
	}
	n, _ := strconv.Atoi(rev)
	if n < 1 || n > len(revs) {
		return nil
	}
	return revs[n-1]
}

func ecsDescribeTaskDefinition(s *state, in map[string]any) (map[string]any, *APIError) {
	td := s.findTaskDef(str(in, "taskDefinition"))
	if td == nil {
		return nil, apiErr(400, "ClientException", "Unable to describe task definition.")
	}
	return map[string]any{"taskDefinition": td.out()}, nil
}

func ecsDeregisterTaskDefinition(s *state, in map[string]any) (map[string]any, *APIError) {
	td := s.findTaskDef(str(in, "taskDefinition"))
	if td == nil {
		return nil, apiErr(400, "ClientException", "The specified task definition does not exist.")
	}
	td.status = "INACTIVE"
	return map[string]any{"taskDefinition": td.out()}, nil
}

func (s *state) serviceNamed(cluster, name string) *service {
	var found *service
	for _, sv := range s.services {
		if sv.cluster == cluster && (sv.name == name || sv.arn == name) {
			if found == nil || sv.created.After(found.created) {
				found = sv
			}
		}
	}
	return found
}

func ecsCreateService(s *state, in map[string]any) (map[string]any, *APIError) {
	cluster, err := s.cluster(in)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if tok := str(in, "clientToken"); tok != "" {
		if arn, ok := s.tokens[tok]; ok {
			return map[string]any{"service": s.serviceOut(s.services[arn], now)}, nil
		}
	}
	name := str(in, "serviceName")
	if old := s.serviceNamed(cluster, name); old != nil && old.status != "INACTIVE" {
		if old.status == "DRAINING" {
			return nil, invalid("Unable to Start a service that is still Draining.")
		}
		return nil, invalid("Creation of service was not idempotent.")
	}
	td := s.findTaskDef(str(in, "taskDefinition"))
	if td == nil {
		return nil, invalid("TaskDefinition not found.")
	}
	sv := &service{arn: s.arn("ecs", "service/"+clusterName(cluster)+"/"+name), name: name, cluster: cluster, taskDef: td.arn,
		desired: int(num(in, "desiredCount")), status: "ACTIVE", in: in, created: now, visibleAt: now.Add(s.f.opt.ConsistencyDelay)}
	if str(in, "launchType") == "FARGATE" && obj(obj(in, "networkConfiguration"), "awsvpcConfiguration") == nil {
		return nil, invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	}
	for _, l := range asList(in["loadBalancers"]) {
		lm := l.(map[string]any)
		tg := s.tgs[str(lm, "targetGroupArn")]
		if tg == nil {
			return nil, invalid("Unable to assume the service linked role. Please verify that the ECS service linked role exists. (target group %s not found)", str(lm, "targetGroupArn"))
		}
		if !s.tgAssociated(tg.arn) {
			return nil, invalid("The target group with targetGroupArn %s does not have an associated load balancer.", tg.arn)
		}
		sv.tgArns = append(sv.tgArns, tg.arn)
		sv.port = int(num(lm, "containerPort"))
	}
	dc := obj(in, "deploymentConfiguration")
	cb := obj(dc, "deploymentCircuitBreaker")
	d := &deployment{id: "ecs-svc/" + s.id(19), status: "PRIMARY", taskDef: td.arn, desired: sv.desired, rolloutState: "IN_PROGRESS",
		reason: "ECS deployment in progress.", created: now, updated: now, circuitBreaker: cb["enable"] == true, rollbk: cb["rollback"] == true}
	sv.deployments = []*deployment{d}
	s.services[sv.arn+"#"+strconv.FormatInt(now.UnixNano(), 10)] = sv
	if tok := str(in, "clientToken"); tok != "" {
		s.tokens[tok] = sv.arn + "#" + strconv.FormatInt(now.UnixNano(), 10)
	}
	return map[string]any{"service": s.serviceOut(sv, now)}, nil
}

func (s *state) tgAssociated(arn string) bool {
	for _, r := range s.rules {
		for _, w := range r.forward {
			if w.arn == arn {
				return true
			}
		}
	}
	return false
}

func (s *state) serviceOut(sv *service, now time.Time) map[string]any {
	c := s.counts(sv)
	var deps []map[string]any
	for _, d := range sv.deployments {
		deps = append(deps, map[string]any{"id": d.id, "status": d.status, "taskDefinition": d.taskDef, "desiredCount": d.desired,
			"runningCount": c.running, "pendingCount": c.pending, "failedTasks": d.failed, "createdAt": d.created, "updatedAt": d.updated,
			"launchType": "FARGATE", "rolloutState": d.rolloutState, "rolloutStateReason": d.reason})
	}
	lbs := append([]any(nil), asList(sv.in["loadBalancers"])...)
	out := map[string]any{"serviceArn": sv.arn, "serviceName": sv.name, "clusterArn": sv.cluster, "status": sv.status,
		"desiredCount": sv.desired, "runningCount": c.running, "pendingCount": c.pending, "launchType": "FARGATE",
		"taskDefinition": sv.taskDef, "deployments": deps, "events": []any{}, "createdAt": sv.created, "schedulingStrategy": "REPLICA",
		"loadBalancers": lbs}
	if tags := sv.in["tags"]; tags != nil {
		out["tags"] = tags
	}
	if nc := sv.in["networkConfiguration"]; nc != nil {
		out["networkConfiguration"] = nc
	}
	if sv.status == "INACTIVE" {
		out["deployments"] = []any{}
	}
	return out
}

func ecsDescribeServices(s *state, in map[string]any) (map[string]any, *APIError) {
	cluster, err := s.cluster(in)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var svcs, fails []map[string]any
	for _, name := range strs(in["services"]) {
		sv := s.serviceNamed(cluster, name)
		// Eventual consistency: a service just created is not yet seen; an
		// INACTIVE one is seen for a while, then not at all.
		if sv == nil || now.Before(sv.visibleAt) || (sv.status == "INACTIVE" && now.Sub(sv.inactiveAt) > time.Minute) {
			arn := name
			if !strings.HasPrefix(name, "arn:") {
				arn = s.arn("ecs", "service/"+clusterName(cluster)+"/"+name)
			}
			fails = append(fails, map[string]any{"arn": arn, "reason": "MISSING"})
			continue
		}
		svcs = append(svcs, s.serviceOut(sv, now))
	}
	return map[string]any{"services": orEmpty(svcs), "failures": orEmpty(fails)}, nil
}

func orEmpty(l []map[string]any) []map[string]any {
	if l == nil {
		return []map[string]any{}
	}
	return l
}

func ecsUpdateService(s *state, in map[string]any) (map[string]any, *APIError) {
	cluster, err := s.cluster(in)
	if err != nil {
		return nil, err
	}
	sv := s.serviceNamed(cluster, str(in, "service"))
	if sv == nil || sv.status != "ACTIVE" {
		return nil, apiErr(400, "ServiceNotActiveException", "Service was not ACTIVE.")
	}
	if _, ok := in["taskDefinition"]; ok {
		return nil, invalid("the fake does not start a new deployment of a service (Runway never changes a group's task definition)")
	}
	if v, ok := in["desiredCount"]; ok {
		sv.desired = int(v.(int64))
		sv.deployments[0].desired = sv.desired
		sv.deployments[0].updated = time.Now()
	}
	return map[string]any{"service": s.serviceOut(sv, time.Now())}, nil
}

func ecsDeleteService(s *state, in map[string]any) (map[string]any, *APIError) {
	cluster, err := s.cluster(in)
	if err != nil {
		return nil, err
	}
	sv := s.serviceNamed(cluster, str(in, "service"))
	if sv == nil || sv.status == "INACTIVE" {
		return nil, apiErr(400, "ServiceNotFoundException", "Service not found.")
	}
	if sv.desired > 0 && in["force"] != true {
		return nil, invalid("The service cannot be stopped while it is scaled above 0.")
	}
	if sv.status == "ACTIVE" {
		sv.status = "DRAINING"
		sv.desired = 0
	}
	return map[string]any{"service": s.serviceOut(sv, time.Now())}, nil
}

func ecsListServices(s *state, in map[string]any) (map[string]any, *APIError) {
	cluster, err := s.cluster(in)
	if err != nil {
		return nil, err
	}
	var arns []string
	for _, sv := range s.services {
		if sv.cluster == cluster && sv.status != "INACTIVE" {
			arns = append(arns, sv.arn)
		}
	}
	sort.Strings(arns)
	return map[string]any{"serviceArns": arns}, nil
}

func ecsRunTask(s *state, in map[string]any) (map[string]any, *APIError) {
	cluster, err := s.cluster(in)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if tok := str(in, "clientToken"); tok != "" {
		if arn, ok := s.tokens["task:"+tok]; ok {
			return map[string]any{"tasks": []map[string]any{s.taskOut(s.tasks[arn])}, "failures": []any{}}, nil
		}
	}
	td := s.findTaskDef(str(in, "taskDefinition"))
	if td == nil {
		return nil, invalid("TaskDefinition not found.")
	}
	if obj(obj(in, "networkConfiguration"), "awsvpcConfiguration") == nil {
		return nil, invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	}
	count := int(num(in, "count"))
	if count == 0 {
		count = 1
	}
	var out []map[string]any
	for range count {
		t := s.newTask(cluster, td.arn, str(in, "startedBy"), "family:"+td.family, nil, nil, obj(in, "overrides"), now)
		if tok := str(in, "clientToken"); tok != "" {
			s.tokens["task:"+tok] = t.arn
		}
		out = append(out, s.taskOut(t))
	}
	return map[string]any{"tasks": out, "failures": []any{}}, nil
}

func (s *state) taskOut(t *task) map[string]any {
	c := map[string]any{"containerArn": s.arn("ecs", "container/"+clusterName(t.cluster)+"/"+t.id+"/"+s.id(8)), "taskArn": t.arn,
		"name": "app", "image": t.container.Image, "lastStatus": t.lastStatus}
	if t.exitCode != nil {
		c["exitCode"] = *t.exitCode
	}
	out := map[string]any{"taskArn": t.arn, "clusterArn": t.cluster, "taskDefinitionArn": t.taskDef, "lastStatus": t.lastStatus,
		"desiredStatus": t.desiredStatus, "group": t.group, "createdAt": t.created, "launchType": "FARGATE", "containers": []map[string]any{c},
		"healthStatus": "UNKNOWN"}
	if t.startedBy != "" {
		out["startedBy"] = t.startedBy
	}
	if !t.runningAt.IsZero() {
		out["startedAt"] = t.runningAt
	}
	if !t.stoppingAt.IsZero() {
		out["stoppingAt"] = t.stoppingAt
	}
	// A task being stopped already says why (the reason is set when the
	// stop begins); stoppedAt once it stopped.
	if t.stopCode != "" {
		out["stopCode"], out["stoppedReason"] = t.stopCode, t.stoppedReason
	}
	if t.lastStatus == "STOPPED" {
		out["stoppedAt"] = t.stoppedAt
	}
	return out
}

func ecsDescribeTasks(s *state, in map[string]any) (map[string]any, *APIError) {
	now := time.Now()
	var out, fails []map[string]any
	for _, ref := range strs(in["tasks"]) {
		var t *task
		for _, x := range s.tasks {
			if x.arn == ref || x.id == ref {
				t = x
			}
		}
		if t == nil || now.Before(t.visibleAt) {
			fails = append(fails, map[string]any{"arn": ref, "reason": "MISSING"})
			continue
		}
		out = append(out, s.taskOut(t))
	}
	return map[string]any{"tasks": orEmpty(out), "failures": orEmpty(fails)}, nil
}

func ecsListTasks(s *state, in map[string]any) (map[string]any, *APIError) {
	cluster, err := s.cluster(in)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	want := str(in, "desiredStatus")
	if want == "" {
		want = "RUNNING"
	}
	var arns []string
	for _, t := range s.tasks {
		if t.cluster != cluster || now.Before(t.visibleAt) || t.desiredStatus != want {
			continue
		}
		if sb := str(in, "startedBy"); sb != "" && t.startedBy != sb {
			continue
		}
		if sn := str(in, "serviceName"); sn != "" && (t.service == nil || t.service.name != sn) {
			continue
		}
		arns = append(arns, t.arn)
	}
	sort.Strings(arns)
	return map[string]any{"taskArns": arns}, nil
}

func ecsStopTask(s *state, in map[string]any) (map[string]any, *APIError) {
	for _, t := range s.tasks {
		if t.arn == str(in, "task") || t.id == str(in, "task") {
			if t.desiredStatus == "RUNNING" {
				t.desiredStatus = "STOPPED"
				t.stopCode = "UserInitiated"
				t.stoppedReason = str(in, "reason")
				if t.stoppedReason == "" {
					t.stoppedReason = "Task stopped by user"
				}
			}
			return map[string]any{"task": s.taskOut(t)}, nil
		}
	}
	return nil, invalid("The referenced task was not found.")
}

// --- ELBv2 ------------------------------------------------------------

func elbErr(code, format string, a ...any) *APIError { return apiErr(400, code, format, a...) }

func ecsLikeInt(m map[string]any, k string, def int) int {
	if v, ok := m[k].(int64); ok {
		return int(v)
	}
	return def
}

func elbCreateTargetGroup(s *state, in map[string]any) (map[string]any, *APIError) {
	name := str(in, "Name")
	for _, tg := range s.tgs {
		if tg.name == name {
			// The same name with the same settings is the same group
			// (CreateTargetGroup is idempotent); other settings are a
			// conflict.
			for _, k := range []string{"Protocol", "Port", "VpcId", "TargetType", "HealthCheckPath"} {
				if fmt.Sprint(tg.in[k]) != fmt.Sprint(in[k]) {
					return nil, elbErr("DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", name)
				}
			}
			return map[string]any{"TargetGroups": []map[string]any{s.tgOut(tg)}}, nil
		}
	}
	id := s.id(16)
	tg := &targetGroup{arn: s.arn("elasticloadbalancing", "targetgroup/"+name+"/"+id), name: name, id: id, vpc: str(in, "VpcId"),
		protocol: str(in, "Protocol"), port: ecsLikeInt(in, "Port", 80), healthPath: str(in, "HealthCheckPath"),
		interval: ecsLikeInt(in, "HealthCheckIntervalSeconds", 30), healthy: ecsLikeInt(in, "HealthyThresholdCount", 5),
		unhealthy: ecsLikeInt(in, "UnhealthyThresholdCount", 2), timeout: ecsLikeInt(in, "HealthCheckTimeoutSeconds", 5),
		deregDelay: 300, in: in, targets: map[string]*target{}}
	if tg.healthPath == "" {
		tg.healthPath = "/"
	}
	s.tgs[tg.arn] = tg
	return map[string]any{"TargetGroups": []map[string]any{s.tgOut(tg)}}, nil
}

func (s *state) tgOut(tg *targetGroup) map[string]any {
	var lbs []string
	if s.tgAssociated(tg.arn) {
		for _, l := range s.listeners {
			lbs = append(lbs, l.lb.arn)
			break
		}
	}
	return map[string]any{"TargetGroupArn": tg.arn, "TargetGroupName": tg.name, "Protocol": tg.protocol, "Port": tg.port, "VpcId": tg.vpc,
		"HealthCheckProtocol": "HTTP", "HealthCheckPort": "traffic-port", "HealthCheckEnabled": true, "HealthCheckIntervalSeconds": tg.interval,
		"HealthCheckTimeoutSeconds": tg.timeout, "HealthyThresholdCount": tg.healthy, "UnhealthyThresholdCount": tg.unhealthy,
		"HealthCheckPath": tg.healthPath, "TargetType": "ip", "LoadBalancerArns": lbs, "Matcher": map[string]any{"HttpCode": "200"}}
}

func elbDescribeTargetGroups(s *state, in map[string]any) (map[string]any, *APIError) {
	var out []map[string]any
	names, arns := strs(in["Names"]), strs(in["TargetGroupArns"])
	for _, n := range names {
		found := false
		for _, tg := range s.tgs {
			if tg.name == n {
				out, found = append(out, s.tgOut(tg)), true
			}
		}
		if !found {
			return nil, elbErr("TargetGroupNotFound", "One or more target groups not found")
		}
	}
	for _, a := range arns {
		tg := s.tgs[a]
		if tg == nil {
			return nil, elbErr("TargetGroupNotFound", "One or more target groups not found")
		}
		out = append(out, s.tgOut(tg))
	}
	if names == nil && arns == nil {
		var all []string
		for a := range s.tgs {
			all = append(all, a)
		}
		sort.Strings(all)
		for _, a := range all {
			out = append(out, s.tgOut(s.tgs[a]))
		}
	}
	return map[string]any{"TargetGroups": orEmpty(out)}, nil
}

func elbDeleteTargetGroup(s *state, in map[string]any) (map[string]any, *APIError) {
	arn := str(in, "TargetGroupArn")
	if s.tgAssociated(arn) {
		return nil, elbErr("ResourceInUse", "Target group '%s' is currently in use by a listener or a rule", arn)
	}
	if tg := s.tgs[arn]; tg != nil {
		for _, tt := range tg.targets {
			tt.cancel()
		}
		delete(s.tgs, arn)
	}
	return map[string]any{}, nil
}

func elbModifyTargetGroupAttributes(s *state, in map[string]any) (map[string]any, *APIError) {
	tg := s.tgs[str(in, "TargetGroupArn")]
	if tg == nil {
		return nil, elbErr("TargetGroupNotFound", "One or more target groups not found")
	}
	for _, a := range asList(in["Attributes"]) {
		m := a.(map[string]any)
		switch str(m, "Key") {
		case "deregistration_delay.timeout_seconds":
			n, err := strconv.Atoi(str(m, "Value"))
			if err != nil || n < 0 || n > 3600 {
				return nil, elbErr("InvalidConfigurationRequest", "deregistration_delay.timeout_seconds must be an integer from 0 to 3600")
			}
			tg.deregDelay = n
		default:
			return nil, elbErr("InvalidConfigurationRequest", "the fake does not know the attribute %q", str(m, "Key"))
		}
	}
	return elbDescribeTargetGroupAttributes(s, in)
}

func elbDescribeTargetGroupAttributes(s *state, in map[string]any) (map[string]any, *APIError) {
	tg := s.tgs[str(in, "TargetGroupArn")]
	if tg == nil {
		return nil, elbErr("TargetGroupNotFound", "One or more target groups not found")
	}
	return map[string]any{"Attributes": []map[string]any{{"Key": "deregistration_delay.timeout_seconds", "Value": strconv.Itoa(tg.deregDelay)}}}, nil
}

func elbDescribeTargetHealth(s *state, in map[string]any) (map[string]any, *APIError) {
	tg := s.tgs[str(in, "TargetGroupArn")]
	if tg == nil {
		return nil, elbErr("TargetGroupNotFound", "One or more target groups not found")
	}
	var out []map[string]any
	for _, ip := range tg.ips() {
		tt := tg.targets[ip]
		th := map[string]any{"State": tt.state}
		if tt.reason != "" {
			th["Reason"] = tt.reason
		}
		out = append(out, map[string]any{"Target": map[string]any{"Id": tt.id, "Port": tt.port}, "HealthCheckPort": strconv.Itoa(tt.port), "TargetHealth": th})
	}
	return map[string]any{"TargetHealthDescriptions": orEmpty(out)}, nil
}

func (s *state) parseRule(r *rule, in map[string]any) *APIError {
	if c, ok := in["Conditions"]; ok {
		r.conditions, r.hosts = asList(c), nil
		for _, c := range r.conditions {
			cm := c.(map[string]any)
			if str(cm, "Field") != "host-header" {
				return elbErr("ValidationError", "the fake routes host-header conditions only")
			}
			r.hosts = append(r.hosts, strs(obj(cm, "HostHeaderConfig")["Values"])...)
			r.hosts = append(r.hosts, strs(cm["Values"])...)
		}
	}
	if a, ok := in["Actions"]; ok {
		acts := asList(a)
		if len(acts) != 1 || str(acts[0].(map[string]any), "Type") != "forward" {
			return elbErr("ValidationError", "the fake routes one forward action per rule")
		}
		am := acts[0].(map[string]any)
		var fw []weighted
		if arn := str(am, "TargetGroupArn"); arn != "" {
			fw = append(fw, weighted{arn: arn, weight: 1})
		}
		for _, t := range asList(obj(am, "ForwardConfig")["TargetGroups"]) {
			tm := t.(map[string]any)
			w := 1
			if v, ok := tm["Weight"].(int64); ok {
				w = int(v)
			}
			fw = append(fw, weighted{arn: str(tm, "TargetGroupArn"), weight: w})
		}
		if len(fw) == 0 || len(fw) > 5 {
			return elbErr("ValidationError", "a forward action has 1 to 5 target groups, not %d", len(fw))
		}
		seen := map[string]bool{}
		for _, w := range fw {
			if s.tgs[w.arn] == nil {
				return elbErr("TargetGroupNotFound", "Target group '%s' not found", w.arn)
			}
			if seen[w.arn] {
				return elbErr("ValidationError", "target group '%s' is listed twice", w.arn)
			}
			seen[w.arn] = true
		}
		r.actions, r.forward = acts, fw
	}
	return nil
}

func elbCreateRule(s *state, in map[string]any) (map[string]any, *APIError) {
	l := s.listeners[str(in, "ListenerArn")]
	if l == nil {
		return nil, elbErr("ListenerNotFound", "One or more listeners not found")
	}
	prio := int(num(in, "Priority"))
	for _, r := range s.rules {
		if r.listener == l.arn && r.priority == prio {
			return nil, elbErr("PriorityInUse", "Priority '%d' is currently in use", prio)
		}
	}
	r := &rule{arn: strings.Replace(l.arn, ":listener/", ":listener-rule/", 1) + "/" + s.id(16), listener: l.arn, priority: prio}
	if err := s.parseRule(r, in); err != nil {
		return nil, err
	}
	s.rules[r.arn] = r
	return map[string]any{"Rules": []map[string]any{r.out()}}, nil
}

func (r *rule) out() map[string]any {
	return map[string]any{"RuleArn": r.arn, "Priority": strconv.Itoa(r.priority), "Conditions": r.conditions, "Actions": r.actions, "IsDefault": false}
}

func elbModifyRule(s *state, in map[string]any) (map[string]any, *APIError) {
	r := s.rules[str(in, "RuleArn")]
	if r == nil {
		return nil, elbErr("RuleNotFound", "One or more rules not found")
	}
	c := *r
	if err := s.parseRule(&c, in); err != nil {
		return nil, err
	}
	*r = c
	return map[string]any{"Rules": []map[string]any{r.out()}}, nil
}

func elbDeleteRule(s *state, in map[string]any) (map[string]any, *APIError) {
	if s.rules[str(in, "RuleArn")] == nil {
		return nil, elbErr("RuleNotFound", "One or more rules not found")
	}
	delete(s.rules, str(in, "RuleArn"))
	return map[string]any{}, nil
}

func elbDescribeRules(s *state, in map[string]any) (map[string]any, *APIError) {
	var out []*rule
	if la := str(in, "ListenerArn"); la != "" {
		if s.listeners[la] == nil {
			return nil, elbErr("ListenerNotFound", "One or more listeners not found")
		}
		for _, r := range s.rules {
			if r.listener == la {
				out = append(out, r)
			}
		}
	}
	for _, a := range strs(in["RuleArns"]) {
		r := s.rules[a]
		if r == nil {
			return nil, elbErr("RuleNotFound", "One or more rules not found")
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].priority < out[j].priority })
	var l []map[string]any
	for _, r := range out {
		l = append(l, r.out())
	}
	return map[string]any{"Rules": orEmpty(l)}, nil
}
