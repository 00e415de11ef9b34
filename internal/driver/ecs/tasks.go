package ecs

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// haltReason marks a task StopTask stopped: it is forgotten, so a later
// StartTask runs the task again.
const haltReason = "runway: stopped (halt or deadline)"

// StartedBy is the startedBy of task id of ref: deterministic, so the next
// server finds the task the last one started (ListTasks).
func StartedBy(ref target.ServiceRef, id string) string {
	return "runway-" + token(40, "task", ref.String(), id)
}

func (c *clients) tasksStartedBy(ctx context.Context, startedBy string) ([]ecstypes.Task, error) {
	var arns []string
	for _, status := range []ecstypes.DesiredStatus{ecstypes.DesiredStatusRunning, ecstypes.DesiredStatusStopped} {
		out, err := c.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(c.env.Cluster), StartedBy: aws.String(startedBy), DesiredStatus: status})
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		arns = append(arns, out.TaskArns...)
	}
	return c.describeTasks(ctx, arns)
}

func (c *clients) describeTasks(ctx context.Context, arns []string) ([]ecstypes.Task, error) {
	if len(arns) == 0 {
		return nil, nil
	}
	out, err := c.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(c.env.Cluster), Tasks: arns})
	if err != nil {
		return nil, fmt.Errorf("describe tasks: %w", err)
	}
	sort.Slice(out.Tasks, func(i, j int) bool {
		return aws.ToTime(out.Tasks[i].CreatedAt).Before(aws.ToTime(out.Tasks[j].CreatedAt))
	})
	return out.Tasks, nil
}

// current is the task of startedBy that is not forgotten, and how many
// were forgotten.
func (d *Driver) current(ctx context.Context, c *clients, ref target.ServiceRef, id string) (*ecstypes.Task, int, error) {
	sb := StartedBy(ref, id)
	tasks, err := c.tasksStartedBy(ctx, sb)
	if err != nil {
		return nil, 0, err
	}
	d.mu.Lock()
	arn := d.started[sb]
	d.mu.Unlock()
	if arn != "" && !containsTask(tasks, arn) {
		// Started by this process and not listed yet (eventual consistency).
		more, err := c.describeTasks(ctx, []string{arn})
		if err != nil {
			return nil, 0, err
		}
		if len(more) == 0 {
			// RunTask answered with it: it exists, not yet visible.
			more = []ecstypes.Task{{TaskArn: aws.String(arn), LastStatus: aws.String("PROVISIONING")}}
		}
		tasks = append(tasks, more...)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	halted := 0
	var cur *ecstypes.Task
	for i, t := range tasks {
		if aws.ToString(t.StoppedReason) == haltReason || d.halted[aws.ToString(t.TaskArn)] {
			halted++
			continue
		}
		cur = &tasks[i]
	}
	return cur, halted, nil
}

func containsTask(ts []ecstypes.Task, arn string) bool {
	for _, t := range ts {
		if aws.ToString(t.TaskArn) == arn {
			return true
		}
	}
	return false
}

// StartTask runs the task with its release's task definition (the group's
// family), the command as a container override, once per id: a task of
// the id's startedBy running or finished is not started again, and the
// client token makes a RunTask repeated after a crash return the same task.
func (d *Driver) StartTask(ctx context.Context, t target.Task) error {
	defer d.locks.Lock(t.ID)()
	c, err := d.clients(ctx, t.Ref.Environment)
	if err != nil {
		return err
	}
	cur, halted, err := d.current(ctx, c, t.Ref, t.ID)
	if err != nil || cur != nil {
		return err
	}
	family := strategy.GroupName(t.Ref.Service, t.Release, Capabilities().GroupNameMax)
	td, err := d.taskDefinition(ctx, c, t.Ref, family, t.Release, t.Spec)
	if err != nil {
		return err
	}
	sb := StartedBy(t.Ref, t.ID)
	out, err := c.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(c.env.Cluster), TaskDefinition: aws.String(td), StartedBy: aws.String(sb),
		ClientToken: aws.String(token(48, sb, strconv.Itoa(halted))), LaunchType: ecstypes.LaunchTypeFargate, Count: aws.Int32(1),
		Overrides: &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{Name: aws.String(container), Command: t.Command}}},
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: c.env.SubnetIDs,
			SecurityGroups: []string{c.env.Service(t.Ref.Service).SecurityGroupID}, AssignPublicIp: ecstypes.AssignPublicIpDisabled}},
		Tags: tags(t.Ref, t.Release)})
	if err != nil {
		return fmt.Errorf("run task %s: %w", t.Name, err)
	}
	if len(out.Tasks) == 0 {
		return fmt.Errorf("run task %s: %v", t.Name, out.Failures)
	}
	d.mu.Lock()
	d.started[sb] = aws.ToString(out.Tasks[0].TaskArn)
	d.mu.Unlock()
	return nil
}

// ObserveTask reports the task of id: done once STOPPED, with its
// container's exit code and the last lines of its log stream.
func (d *Driver) ObserveTask(ctx context.Context, ref target.ServiceRef, id string) (target.TaskStatus, error) {
	defer d.locks.Lock(id)()
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return target.TaskStatus{}, err
	}
	cur, _, err := d.current(ctx, c, ref, id)
	if err != nil {
		return target.TaskStatus{}, err
	}
	if cur == nil {
		return target.TaskStatus{}, fmt.Errorf("task %s: %w", id, target.ErrTaskNotStarted)
	}
	if aws.ToString(cur.LastStatus) != "STOPPED" {
		return target.TaskStatus{}, nil
	}
	res := target.TaskResult{ExitCode: -1}
	for _, ct := range cur.Containers {
		if ct.ExitCode != nil {
			res.ExitCode = int(*ct.ExitCode)
		}
	}
	if res.ExitCode == -1 {
		res.Output = aws.ToString(cur.StoppedReason)
	}
	family := familyOf(aws.ToString(cur.TaskDefinitionArn))
	taskID := aws.ToString(cur.TaskArn)[strings.LastIndex(aws.ToString(cur.TaskArn), "/")+1:]
	var lines []string
	_ = d.readLogs(ctx, c, ref.Service, family+"/"+container+"/"+taskID, time.Time{}, func(e logEvent) error {
		lines = append(lines, e.text)
		return nil
	})
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	if len(lines) > 0 {
		res.Output = strings.Join(lines, "\n")
	}
	return target.TaskStatus{Done: true, Result: res}, nil
}

func familyOf(tdArn string) string {
	_, rest, _ := strings.Cut(tdArn, ":task-definition/")
	fam, _, _ := strings.Cut(rest, ":")
	return fam
}

// StopTask stops a running task and marks it forgotten; a finished task
// keeps its result.
func (d *Driver) StopTask(ctx context.Context, ref target.ServiceRef, id string) error {
	defer d.locks.Lock(id)()
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return err
	}
	cur, _, err := d.current(ctx, c, ref, id)
	if err != nil || cur == nil || aws.ToString(cur.LastStatus) == "STOPPED" && aws.ToString(cur.DesiredStatus) == "STOPPED" && cur.StopCode != "" {
		return err
	}
	if _, err := c.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(c.env.Cluster), Task: cur.TaskArn, Reason: aws.String(haltReason)}); err != nil {
		return fmt.Errorf("stop task %s: %w", id, err)
	}
	d.mu.Lock()
	d.halted[aws.ToString(cur.TaskArn)] = true
	d.mu.Unlock()
	return nil
}

type logEvent struct {
	t        time.Time
	id       string
	stream   string
	text     string
	instance string
}

// readLogs emits the events of the streams starting with prefix since
// since, oldest first.
func (d *Driver) readLogs(ctx context.Context, c *clients, service, prefix string, since time.Time, emit func(logEvent) error) error {
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(c.env.Service(service).LogGroup), LogStreamNamePrefix: aws.String(prefix)}
	if !since.IsZero() {
		in.StartTime = aws.Int64(since.UnixMilli())
	}
	p := cloudwatchlogs.NewFilterLogEventsPaginator(c.logs, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("read logs: %w", err)
		}
		for _, e := range page.Events {
			stream := aws.ToString(e.LogStreamName)
			if err := emit(logEvent{t: time.UnixMilli(aws.ToInt64(e.Timestamp)), id: aws.ToString(e.EventId), stream: stream,
				text: aws.ToString(e.Message), instance: stream[strings.LastIndex(stream, "/")+1:]}); err != nil {
				return err
			}
		}
	}
	return nil
}
