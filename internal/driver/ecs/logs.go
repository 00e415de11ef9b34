package ecs

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/runwayhq/runway/internal/target"
)

// Logs reads the group's streams in the environment's log group
// (<group>/app/<task id>: the awslogs stream prefix is the group), also of
// deleted groups; following polls CloudWatch Logs every Poll.
func (d *Driver) Logs(ctx context.Context, ref target.ServiceRef, q target.LogQuery, emit func(target.LogLine) error) error {
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return err
	}
	prefix := q.Group + "/" + container + "/"
	if q.Instance != "" {
		prefix += q.Instance
	}
	keep := func(e logEvent) bool {
		return q.Filter == "" || strings.Contains(e.instance, q.Filter) || strings.Contains(e.text, q.Filter)
	}
	line := func(e logEvent) target.LogLine {
		return target.LogLine{Time: e.t, Instance: e.instance, Stream: "stdout", Text: e.text}
	}
	var events []logEvent
	if err := d.readLogs(ctx, c, ref.Service, prefix, q.Since, func(e logEvent) error {
		if keep(e) {
			events = append(events, e)
		}
		return nil
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if q.Tail > 0 && len(events) > q.Tail {
		events = events[len(events)-q.Tail:]
	}
	seen := map[string]bool{}
	last := q.Since
	for _, e := range events {
		seen[e.id] = true
		last = e.t
		if err := emit(line(e)); err != nil {
			return err
		}
	}
	if !q.Follow {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d.opt.Poll):
		}
		n := 0
		err := d.readLogs(ctx, c, ref.Service, prefix, last, func(e logEvent) error {
			if seen[e.id] || !keep(e) {
				return nil
			}
			seen[e.id] = true
			n++
			if e.t.After(last) {
				last = e.t
			}
			return emit(line(e))
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			// A deleted group writes no more: following it ends.
			if sv, err := c.service(ctx, q.Group); err == nil && sv == nil {
				return nil
			}
		}
	}
}

// CrashReport names the group's stopped task that exited non-zero (or
// failed its health checks) last, how, and its last lines.
func (d *Driver) CrashReport(ctx context.Context, ref target.ServiceRef, group string) (target.CrashReport, error) {
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return target.CrashReport{}, err
	}
	out, err := c.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(c.env.Cluster), ServiceName: aws.String(group), DesiredStatus: ecstypes.DesiredStatusStopped})
	if err != nil {
		return target.CrashReport{}, nil // a deleted service: nothing to report
	}
	tasks, err := c.describeTasks(ctx, out.TaskArns)
	if err != nil {
		return target.CrashReport{}, err
	}
	for i := len(tasks) - 1; i >= 0; i-- {
		t := tasks[i]
		if t.StopCode == ecstypes.TaskStopCodeUserInitiated || strings.HasPrefix(aws.ToString(t.StoppedReason), "Scaling activity") {
			continue
		}
		id := aws.ToString(t.TaskArn)[strings.LastIndex(aws.ToString(t.TaskArn), "/")+1:]
		rep := target.CrashReport{Instance: id, Exit: aws.ToString(t.StoppedReason)}
		for _, ct := range t.Containers {
			if ct.ExitCode != nil {
				rep.Exit += " (exit status " + itoa(int(*ct.ExitCode)) + ")"
			}
		}
		_ = d.readLogs(ctx, c, ref.Service, group+"/"+container+"/"+id, time.Time{}, func(e logEvent) error {
			rep.Lines = append(rep.Lines, e.text)
			return nil
		})
		if len(rep.Lines) > 20 {
			rep.Lines = rep.Lines[len(rep.Lines)-20:]
		}
		return rep, nil
	}
	return target.CrashReport{}, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
