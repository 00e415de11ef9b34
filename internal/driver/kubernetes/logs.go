package kubernetes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runwayhq/runway/internal/target"
)

// Logs come from the pods' log API (the kubelet keeps a container's
// current and previous log); a deleted pod's log is gone with it, so the
// logs of a deleted group are what the cluster's log collection keeps, not
// this API (docs/kubernetes.md).

// parseLine splits a line of a log read with timestamps.
func parseLine(pod, s string) target.LogLine {
	l := target.LogLine{Instance: pod, Stream: "stdout", Text: s}
	if ts, rest, ok := strings.Cut(s, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			l.Time, l.Text = t, rest
		}
	}
	return l
}

func keep(q target.LogQuery, l target.LogLine) bool {
	if !q.Since.IsZero() && l.Time.Before(q.Since) {
		return false
	}
	return q.Filter == "" || strings.Contains(l.Instance, q.Filter) || strings.Contains(l.Text, q.Filter)
}

func (d *Driver) logOptions(q target.LogQuery, follow bool) *corev1.PodLogOptions {
	o := &corev1.PodLogOptions{Container: ContainerName, Timestamps: true, Follow: follow}
	if q.Tail > 0 {
		n := int64(q.Tail)
		o.TailLines = &n
	}
	if !q.Since.IsZero() {
		o.SinceTime = &metav1.Time{Time: q.Since}
	}
	return o
}

// Logs emits the lines q selects, oldest first (per pod when following).
func (d *Driver) Logs(ctx context.Context, ref target.ServiceRef, q target.LogQuery, emit func(target.LogLine) error) error {
	c, cerr := d.client(ref)
	if cerr != nil {
		return cerr
	}
	ns := d.Namespace(ref)
	pods, err := d.pods(ctx, ref, q.Group)
	if err != nil {
		return err
	}
	if !q.Follow {
		var lines []target.LogLine
		var firstErr error
		read := 0
		for _, p := range pods {
			if q.Instance != "" && p.Name != q.Instance {
				continue
			}
			b, err := c.CoreV1().Pods(ns).GetLogs(p.Name, d.logOptions(q, false)).DoRaw(ctx)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("kubernetes: logs of pod %s: %w", p.Name, err)
				}
				continue
			}
			read++
			for _, s := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
				if s == "" {
					continue
				}
				if l := parseLine(p.Name, s); keep(q, l) {
					lines = append(lines, l)
				}
			}
		}
		if read == 0 && firstErr != nil {
			return firstErr
		}
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
		if q.Tail > 0 && len(lines) > q.Tail {
			lines = lines[len(lines)-q.Tail:]
		}
		for _, l := range lines {
			if err := emit(l); err != nil {
				return err
			}
		}
		return nil
	}
	return d.follow(ctx, ref, q, emit)
}

// follow streams the group's pods' logs, and those of pods the group
// gains, until ctx ends or the group is gone and every stream ended.
func (d *Driver) follow(ctx context.Context, ref target.ServiceRef, q target.LogQuery, emit func(target.LogLine) error) error {
	c, cerr := d.client(ref)
	if cerr != nil {
		return cerr
	}
	ns := d.Namespace(ref)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		emitErr error
		wg      sync.WaitGroup
		started = map[string]bool{}
	)
	send := func(l target.LogLine) {
		mu.Lock()
		defer mu.Unlock()
		if emitErr != nil {
			return
		}
		if err := emit(l); err != nil {
			emitErr = err
			cancel()
		}
	}
	stream := func(pod string, opts *corev1.PodLogOptions) {
		defer wg.Done()
		for ctx.Err() == nil {
			rc, err := c.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
			if err != nil {
				// Not started yet, or gone: the pod list decides.
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				p, gerr := c.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
				if gerr != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
					return
				}
				continue
			}
			sc := bufio.NewScanner(rc)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			var last time.Time
			for sc.Scan() {
				l := parseLine(pod, sc.Text())
				last = l.Time
				if keep(q, l) {
					send(l)
				}
			}
			rc.Close()
			if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
				d.log.Debug("kubernetes: log stream ended", "pod", pod, "err", err)
			}
			// The stream ended: the container stopped (or the connection
			// broke; resume after the last line read).
			if !last.IsZero() {
				opts = d.logOptions(q, true)
				opts.TailLines = nil
				opts.SinceTime = &metav1.Time{Time: last.Add(time.Nanosecond)}
			}
			p, err := c.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
			if err != nil || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				return
			}
		}
	}
	for {
		pods, err := d.pods(ctx, ref, q.Group)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		for _, p := range pods {
			if started[p.Name] || (q.Instance != "" && p.Name != q.Instance) {
				continue
			}
			started[p.Name] = true
			wg.Add(1)
			go stream(p.Name, d.logOptions(q, true))
		}
		if len(pods) == 0 {
			st, err := d.ObserveGroup(ctx, ref, q.Group)
			if err == nil && !st.Exists {
				break
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		if ctx.Err() != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return emitErr
}

// CrashReport names the group's pod that restarted most, how its
// container last ended and the last lines of that run's log.
func (d *Driver) CrashReport(ctx context.Context, ref target.ServiceRef, group string) (target.CrashReport, error) {
	c, cerr := d.client(ref)
	if cerr != nil {
		return target.CrashReport{}, cerr
	}
	pods, err := d.pods(ctx, ref, group)
	if err != nil {
		return target.CrashReport{}, err
	}
	var worst *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if restarts(p) > 0 && (worst == nil || restarts(p) > restarts(worst)) {
			worst = p
		}
	}
	if worst == nil {
		return target.CrashReport{}, nil
	}
	r := target.CrashReport{Instance: worst.Name}
	for _, cs := range worst.Status.ContainerStatuses {
		if t := cs.LastTerminationState.Terminated; t != nil {
			r.Exit = exitText(t)
		}
	}
	n := int64(20)
	b, err := c.CoreV1().Pods(d.Namespace(ref)).GetLogs(worst.Name, &corev1.PodLogOptions{Container: ContainerName, Previous: true, TailLines: &n}).DoRaw(ctx)
	if err == nil {
		for _, s := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if s != "" {
				r.Lines = append(r.Lines, s)
			}
		}
	}
	return r, nil
}
