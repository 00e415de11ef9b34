package awsfake

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"time"
)

// state is every resource of the fake, guarded by Fake.mu.
type state struct {
	f      *Fake
	seq    int
	logSeq int // guarded by Fake.logMu

	clusters map[string]string // name -> ARN
	taskDefs map[string][]*taskDef
	services map[string]*service // by ARN
	tasks    map[string]*task    // by ARN
	tokens   map[string]string   // client token -> ARN

	lbs       map[string]*loadBalancer
	listeners map[string]*listener
	rules     map[string]*rule
	tgs       map[string]*targetGroup

	logGroups map[string]map[string][]logEvent // group -> stream -> events
	metrics   map[string]map[int64]*minute     // target group ARN -> minute -> figures

	secrets map[string]*smSecret // Secrets Manager, by ARN
}

func newState(f *Fake) *state {
	return &state{f: f, clusters: map[string]string{}, taskDefs: map[string][]*taskDef{}, services: map[string]*service{},
		tasks: map[string]*task{}, tokens: map[string]string{}, lbs: map[string]*loadBalancer{}, listeners: map[string]*listener{},
		rules: map[string]*rule{}, tgs: map[string]*targetGroup{}, logGroups: map[string]map[string][]logEvent{},
		metrics: map[string]map[int64]*minute{}}
}

func (s *state) id(n int) string {
	s.seq++
	h := fnv.New64a()
	fmt.Fprintf(h, "%d-%d", s.seq, time.Now().UnixNano())
	out := fmt.Sprintf("%016x%016x", h.Sum64(), uint64(s.seq)*0x9e3779b97f4a7c15)
	return out[:n]
}

func (s *state) arn(service, resource string) string {
	return fmt.Sprintf("arn:aws:%s:%s:%s:%s", service, s.f.opt.Region, s.f.opt.Account, resource)
}

type taskDef struct {
	arn      string
	family   string
	revision int
	in       map[string]any
	status   string
}

type deployment struct {
	id, status, taskDef    string
	desired, failed        int
	rolloutState, reason   string
	created, updated       time.Time
	circuitBreaker, rollbk bool
}

type service struct {
	arn, name, cluster, taskDef string
	desired                     int
	status                      string
	in                          map[string]any
	created, visibleAt          time.Time
	inactiveAt                  time.Time
	deployments                 []*deployment
	tgArns                      []string
	port                        int
}

type task struct {
	arn, id, cluster, taskDef, group, startedBy string
	service                                     *service
	deployment                                  *deployment
	lastStatus, desiredStatus                   string
	created, pendingAt, runningAt, stoppingAt   time.Time
	stoppedAt, visibleAt                        time.Time
	stopCode, stoppedReason                     string
	exitCode                                    *int
	proc                                        Process
	ip                                          string
	container                                   Container
	logGroup, logStream                         string
}

// Bootstrap creates what the generated Terraform owns in an environment:
// an ECS cluster, a load balancer with an HTTPS listener (served by the
// fake's data plane), a VPC with private subnets, roles and a log group.
func (f *Fake) Bootstrap(env string) Static {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.st
	name := "runway-" + env
	cluster := s.arn("ecs", "cluster/"+name)
	s.clusters[name] = cluster
	lbID := s.id(16)
	lb := &loadBalancer{arn: s.arn("elasticloadbalancing", "loadbalancer/app/"+name+"/"+lbID), name: name, id: lbID}
	s.lbs[lb.arn] = lb
	l := &listener{arn: s.arn("elasticloadbalancing", "listener/app/"+name+"/"+lbID+"/"+s.id(16)), lb: lb, port: 443}
	s.listeners[l.arn] = l
	group := "/runway/" + env
	f.logMu.Lock()
	if s.logGroups[group] == nil {
		s.logGroups[group] = map[string][]logEvent{}
	}
	f.logMu.Unlock()
	return Static{ClusterName: name, ClusterARN: cluster, ListenerARN: l.arn, LoadBalancerARN: lb.arn,
		VpcID: "vpc-0" + s.id(16), SubnetIDs: []string{"subnet-0" + s.id(16), "subnet-0" + s.id(16)},
		SecurityGroupID: "sg-0" + s.id(16), ExecutionRoleARN: fmt.Sprintf("arn:aws:iam::%s:role/%s-execution", f.opt.Account, name),
		TaskRoleARN: fmt.Sprintf("arn:aws:iam::%s:role/%s-task", f.opt.Account, name), LogGroupName: group,
		Region: f.opt.Region, Account: f.opt.Account}
}

// Static is what Bootstrap created, named as the generated Terraform's
// outputs name it.
type Static struct {
	ClusterName, ClusterARN, ListenerARN, LoadBalancerARN string
	VpcID                                                 string
	SubnetIDs                                             []string
	SecurityGroupID                                       string
	ExecutionRoleARN, TaskRoleARN                         string
	LogGroupName                                          string
	Region, Account                                       string
}

// TaskStarts counts the tasks started with startedBy (running or stopped).
func (f *Fake) TaskStarts(startedBy string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.st.tasks {
		if t.startedBy == startedBy && !t.runningAt.IsZero() {
			n++
		}
	}
	return n
}

// Resources counts the ECS services (not yet INACTIVE) and target groups
// whose name starts with prefix: a resumed release creates no duplicates.
func (f *Fake) Resources(prefix string) (services, targetGroups int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sv := range f.st.services {
		if strings.HasPrefix(sv.name, prefix) && sv.status != "INACTIVE" {
			services++
		}
	}
	for _, tg := range f.st.tgs {
		if strings.HasPrefix(tg.name, prefix) {
			targetGroups++
		}
	}
	return services, targetGroups
}

// TaskImages lists the images of the running tasks of services named
// with prefix, sorted, once each.
func (f *Fake) TaskImages(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, t := range f.st.sortedTasks() {
		if t.service != nil && strings.HasPrefix(t.service.name, prefix) && t.lastStatus == "RUNNING" && !seen[t.container.Image] {
			seen[t.container.Image] = true
			out = append(out, t.container.Image)
		}
	}
	sort.Strings(out)
	return out
}

func (s *state) stopAll() {
	for _, t := range s.tasks {
		if t.proc != nil {
			t.proc.Stop()
		}
	}
	for _, tg := range s.tgs {
		for _, tt := range tg.targets {
			tt.cancel()
		}
	}
}

// tick advances tasks, health checks, draining and deployments to now.
func (s *state) tick(now time.Time) {
	f := s.f
	for _, t := range s.sortedTasks() {
		switch t.lastStatus {
		case "PROVISIONING":
			if now.Sub(t.created) >= f.scaled(2*time.Second) {
				t.lastStatus, t.pendingAt = "PENDING", now
			}
		case "PENDING":
			if now.Sub(t.pendingAt) >= f.scaled(3*time.Second) {
				s.startTask(t, now)
			}
		case "RUNNING", "DEACTIVATING", "STOPPING":
			select {
			case <-t.proc.Exited():
				code := t.proc.Code()
				t.exitCode = &code
				if t.desiredStatus == "RUNNING" {
					t.stopCode, t.stoppedReason = "EssentialContainerExited", "Essential container in task exited"
					if t.deployment != nil {
						t.deployment.failed++
					}
				}
				s.finishTask(t, now)
			default:
			}
		}
		if t.desiredStatus == "STOPPED" && t.lastStatus != "STOPPED" {
			s.stopping(t, now)
		}
	}
	for _, tg := range s.tgs {
		s.healthChecks(tg, now)
	}
	for _, sv := range s.services {
		s.reconcile(sv, now)
	}
}

func (s *state) sortedTasks() []*task {
	out := make([]*task, 0, len(s.tasks))
	for _, t := range s.tasks {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].arn < out[j].arn })
	return out
}

func (s *state) startTask(t *task, now time.Time) {
	td := s.taskDefByARN(t.taskDef)
	c := t.container
	c.TaskID = t.id
	c.Log = func(line string) { s.f.appendLog(t.logGroup, t.logStream, line) }
	s.f.logMu.Lock()
	noGroup := t.logGroup != "" && s.logGroups[t.logGroup] == nil
	s.f.logMu.Unlock()
	if noGroup {
		t.stopCode = "TaskFailedToStart"
		t.stoppedReason = "ResourceInitializationError: failed to validate logger args: The specified log group does not exist"
		t.desiredStatus = "STOPPED"
		if t.deployment != nil {
			t.deployment.failed++
		}
		s.finishTask(t, now)
		return
	}
	_ = td
	// The task execution role reads the task definition's secrets before
	// the container starts; one it cannot read fails the task.
	refs := c.Secrets
	c.Secrets = make(map[string]string, len(refs))
	for name, from := range refs {
		v, problem := s.resolveSecret(from)
		if problem != "" {
			t.stopCode = "TaskFailedToStart"
			t.stoppedReason = "ResourceInitializationError: unable to pull secrets or registry auth: unable to retrieve secret from asm: " + problem
			t.desiredStatus = "STOPPED"
			if t.deployment != nil {
				t.deployment.failed++
			}
			s.finishTask(t, now)
			return
		}
		c.Secrets[name] = v
	}
	p, err := s.f.opt.Runtime(c)
	if err != nil {
		t.stopCode = "TaskFailedToStart"
		t.stoppedReason = "CannotStartContainerError: " + err.Error()
		t.desiredStatus = "STOPPED"
		if t.deployment != nil {
			t.deployment.failed++
		}
		s.finishTask(t, now)
		return
	}
	t.proc, t.lastStatus, t.runningAt = p, "RUNNING", now
	if t.service != nil && t.service.status == "ACTIVE" {
		for _, arn := range t.service.tgArns {
			if tg := s.tgs[arn]; tg != nil {
				tg.register(t.ip, t.service.port, t, now)
			}
		}
	}
}

// stopping deregisters a task that is to stop from its target groups and
// stops its container once no target group drains it any more.
func (s *state) stopping(t *task, now time.Time) {
	if t.stoppingAt.IsZero() {
		t.stoppingAt = now
	}
	draining := false
	for _, tg := range s.tgs {
		if tt := tg.targets[t.ip]; tt != nil && tt.task == t {
			if tt.state != "draining" {
				tt.state, tt.reason, tt.drainingSince = "draining", "Target.DeregistrationInProgress", now
			}
			draining = true
		}
	}
	switch {
	case t.proc == nil:
		s.finishTask(t, now)
	case draining:
		t.lastStatus = "DEACTIVATING"
	default:
		t.lastStatus = "STOPPING"
		t.proc.Stop()
	}
}

func (s *state) finishTask(t *task, now time.Time) {
	t.lastStatus, t.desiredStatus, t.stoppedAt = "STOPPED", "STOPPED", now
	if t.stopCode == "" {
		t.stopCode, t.stoppedReason = "UserInitiated", "Task stopped by user"
	}
	for _, tg := range s.tgs {
		if tt := tg.targets[t.ip]; tt != nil && tt.task == t {
			tt.cancel()
			delete(tg.targets, t.ip)
		}
	}
}

// reconcile is the ECS service scheduler: it keeps the primary
// deployment's desired count of tasks, replaces tasks that stopped, stops
// tasks that fail their load balancer health checks, and moves the
// rollout state.
func (s *state) reconcile(sv *service, now time.Time) {
	if sv.status == "INACTIVE" {
		return
	}
	var live []*task
	for _, t := range s.tasks {
		if t.service == sv && t.desiredStatus == "RUNNING" {
			live = append(live, t)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].created.Before(live[j].created) })
	if sv.status == "DRAINING" {
		for _, t := range live {
			t.desiredStatus = "STOPPED"
		}
		remaining := 0
		for _, t := range s.tasks {
			if t.service == sv && t.lastStatus != "STOPPED" {
				remaining++
			}
		}
		if remaining == 0 {
			sv.status, sv.inactiveAt = "INACTIVE", now
		}
		return
	}
	d := sv.deployments[0]
	for _, t := range live {
		for _, arn := range sv.tgArns {
			if tt := s.tgs[arn].targetOf(t); tt != nil && tt.state == "unhealthy" {
				t.desiredStatus = "STOPPED"
				t.stopCode = "ServiceSchedulerInitiated"
				t.stoppedReason = "Task failed ELB health checks in (target-group " + arn + ")"
				d.failed++
			}
		}
	}
	n := 0
	for _, t := range live {
		if t.desiredStatus == "RUNNING" {
			n++
		}
	}
	for ; n < d.desired; n++ {
		s.newTask(sv.cluster, sv.taskDef, "ecs-svc/"+sv.name, "service:"+sv.name, sv, d, nil, now)
	}
	for i := len(live) - 1; i >= 0 && n > d.desired; i-- {
		if live[i].desiredStatus == "RUNNING" {
			live[i].desiredStatus = "STOPPED"
			live[i].stopCode, live[i].stoppedReason = "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment "+d.id+")"
			n--
		}
	}
	threshold := int(math.Min(200, math.Max(3, math.Ceil(0.5*float64(d.desired)))))
	switch {
	case d.rolloutState != "IN_PROGRESS":
	case d.circuitBreaker && d.failed >= threshold:
		d.rolloutState, d.updated = "FAILED", now
		d.reason = fmt.Sprintf("ECS deployment circuit breaker: tasks failed to start. %d tasks failed (threshold %d).", d.failed, threshold)
	case s.counts(sv).running == d.desired && s.allHealthy(sv):
		d.rolloutState, d.updated = "COMPLETED", now
		d.reason = "ECS deployment " + d.id + " completed."
	}
}

type counts struct{ running, pending int }

func (s *state) counts(sv *service) counts {
	var c counts
	for _, t := range s.tasks {
		if t.service != sv {
			continue
		}
		switch t.lastStatus {
		case "RUNNING":
			c.running++
		case "PROVISIONING", "PENDING":
			c.pending++
		}
	}
	return c
}

func (s *state) allHealthy(sv *service) bool {
	for _, t := range s.tasks {
		if t.service != sv || t.lastStatus != "RUNNING" {
			continue
		}
		for _, arn := range sv.tgArns {
			if tt := s.tgs[arn].targetOf(t); tt == nil || tt.state != "healthy" {
				return false
			}
		}
	}
	return true
}

func (s *state) newTask(cluster, tdArn, startedBy, group string, sv *service, d *deployment, overrides map[string]any, now time.Time) *task {
	id := s.id(32)
	t := &task{arn: s.arn("ecs", "task/"+clusterName(cluster)+"/"+id), id: id, cluster: cluster, taskDef: tdArn, group: group,
		startedBy: startedBy, service: sv, deployment: d, lastStatus: "PROVISIONING", desiredStatus: "RUNNING", created: now,
		visibleAt: now.Add(s.f.opt.ConsistencyDelay), ip: fmt.Sprintf("10.0.%d.%d", (s.seq/250)%250, s.seq%250+2)}
	td := s.taskDefByARN(tdArn)
	if td != nil {
		cds, _ := td.in["containerDefinitions"].([]any)
		if len(cds) > 0 {
			cd, _ := cds[0].(map[string]any)
			t.container = containerOf(cd, overrides)
			if lc, ok := cd["logConfiguration"].(map[string]any); ok && lc["logDriver"] == "awslogs" {
				opts, _ := lc["options"].(map[string]any)
				g, _ := opts["awslogs-group"].(string)
				p, _ := opts["awslogs-stream-prefix"].(string)
				name, _ := cd["name"].(string)
				t.logGroup, t.logStream = g, p+"/"+name+"/"+id
			}
		}
	}
	s.tasks[t.arn] = t
	return t
}

func containerOf(cd map[string]any, overrides map[string]any) Container {
	c := Container{Env: map[string]string{}, Secrets: map[string]string{}}
	c.Image, _ = cd["image"].(string)
	for _, a := range asList(cd["command"]) {
		c.Command = append(c.Command, a.(string))
	}
	for _, e := range asList(cd["environment"]) {
		m := e.(map[string]any)
		c.Env[str(m, "name")] = str(m, "value")
	}
	for _, e := range asList(cd["secrets"]) {
		m := e.(map[string]any)
		c.Secrets[str(m, "name")] = str(m, "valueFrom")
	}
	for _, pm := range asList(cd["portMappings"]) {
		c.Env["PORT"] = strconv.FormatInt(num(pm.(map[string]any), "containerPort"), 10)
	}
	for _, co := range asList(overrides["containerOverrides"]) {
		m := co.(map[string]any)
		if m["name"] != nil && m["name"] != cd["name"] {
			continue
		}
		if cmd := asList(m["command"]); cmd != nil {
			c.Command = nil
			for _, a := range cmd {
				c.Command = append(c.Command, a.(string))
			}
		}
		for _, e := range asList(m["environment"]) {
			em := e.(map[string]any)
			c.Env[str(em, "name")] = str(em, "value")
		}
	}
	return c
}

func clusterName(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func (s *state) taskDefByARN(arn string) *taskDef {
	for _, revs := range s.taskDefs {
		for _, td := range revs {
			if td.arn == arn {
				return td
			}
		}
	}
	return nil
}

// healthChecks runs the target group's health checks against its
// targets, at its interval (scaled): initial -> healthy after
// HealthyThresholdCount passes, -> unhealthy after UnhealthyThresholdCount
// failures; a draining target leaves once it has no request in flight or
// its deregistration delay passed.
func (s *state) healthChecks(tg *targetGroup, now time.Time) {
	interval := s.f.scaled(time.Duration(tg.interval) * time.Second)
	for ip, tt := range tg.targets {
		if tt.state == "draining" {
			if tt.inflight == 0 || now.Sub(tt.drainingSince) >= time.Duration(tg.deregDelay)*time.Second {
				tt.cancel()
				delete(tg.targets, ip)
			}
			continue
		}
		if now.Sub(tt.lastCheck) < interval {
			continue
		}
		tt.lastCheck = now
		ok := false
		if tt.task.proc != nil && tt.task.proc.Handler() != nil {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, tg.healthPath, nil)
			ctx, cancel := context.WithTimeout(req.Context(), time.Second)
			tt.task.proc.Handler().ServeHTTP(rec, req.WithContext(ctx))
			cancel()
			ok = rec.Code == http.StatusOK
		}
		if ok {
			tt.passes, tt.fails = tt.passes+1, 0
			if tt.passes >= tg.healthy {
				tt.state, tt.reason = "healthy", ""
			} else if tt.state == "initial" {
				tt.reason = "Elb.InitialHealthChecking"
			}
		} else {
			tt.fails, tt.passes = tt.fails+1, 0
			if tt.fails >= tg.unhealthy {
				tt.state, tt.reason = "unhealthy", "Target.ResponseCodeMismatch"
			}
		}
	}
}
