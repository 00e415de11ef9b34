package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"k8s.io/client-go/kubernetes"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/runwayhq/runway/internal/target"
)

// Tasks are Jobs named from the task id (JobName): StartTask creates the
// Job unless it exists, so a task started by a server that then crashed is
// found by the next one and observed to its end, never started again. A
// Job runs one pod once (no retries: a failed pre_deploy is a result). The
// result (exit code, output tail) is written into the Job's annotation
// when first observed, so it outlives the pod.

// JobName is the Job of a task id: deterministic, a DNS label of at most
// 52 characters (a Job's pods add 11).
func JobName(id string) string { return hashName("task-", id, 52) }

// outputTail is how many of a task's last log lines its result keeps.
const outputTail = 20

// StartTask creates the task's Job unless it exists.
func (d *Driver) StartTask(ctx context.Context, t target.Task) error {
	c, cerr := d.client(t.Ref)
	if cerr != nil {
		return cerr
	}
	defer d.tasks.Lock(t.ID)()
	if t.Spec == nil {
		return fmt.Errorf("kubernetes: task %s has no manifest", t.ID)
	}
	ns := d.Namespace(t.Ref)
	name := JobName(t.ID)
	if _, err := c.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil
	} else if !isNotFound(err) {
		return fmt.Errorf("kubernetes: read Job %s: %w", name, err)
	}
	secret, err := d.ensureSecret(ctx, t.Ref, t.Release, t.Spec)
	if err != nil {
		return err
	}
	spec := *t.Spec
	spec.Command = t.Command
	ps := podSpec(t.Ref, "", t.Release, &spec, secret, true)
	ps.RestartPolicy = corev1.RestartPolicyNever
	labels := serviceLabels(t.Ref)
	labels[LabelTask] = name
	labels[LabelRelease] = labelValue(t.Release)
	zero := int32(0)
	ttl := int32(24 * 3600)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels,
			Annotations: map[string]string{AnnotTaskID: t.ID}},
		Spec: batchv1.JobSpec{BackoffLimit: &zero, TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: ps}},
	}
	created, err := c.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kubernetes: create Job %s for task %s: %w", name, t.Name, err)
	}
	return d.ownSecret(ctx, c, ns, secret, ownerOf("Job", "batch/v1", created.Name, created.UID))
}

func jobFinished(j *batchv1.Job) (done, failed bool) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			return true, false
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			return true, true
		}
	}
	return false, false
}

// ObserveTask reports the task from its Job (and its pod's exit code).
func (d *Driver) ObserveTask(ctx context.Context, ref target.ServiceRef, id string) (target.TaskStatus, error) {
	c, cerr := d.client(ref)
	if cerr != nil {
		return target.TaskStatus{}, cerr
	}
	defer d.tasks.Lock(id)()
	ns := d.Namespace(ref)
	name := JobName(id)
	jobs := c.BatchV1().Jobs(ns)
	j, err := jobs.Get(ctx, name, metav1.GetOptions{})
	if isNotFound(err) {
		return target.TaskStatus{}, fmt.Errorf("kubernetes: task %s: %w", id, target.ErrTaskNotStarted)
	}
	if err != nil {
		return target.TaskStatus{}, fmt.Errorf("kubernetes: read Job %s: %w", name, err)
	}
	if j.DeletionTimestamp != nil {
		return target.TaskStatus{}, fmt.Errorf("kubernetes: task %s is being stopped: %w", id, target.ErrTaskNotStarted)
	}
	if a := j.Annotations[AnnotTaskResult]; a != "" {
		var res target.TaskResult
		if err := json.Unmarshal([]byte(a), &res); err != nil {
			return target.TaskStatus{}, fmt.Errorf("kubernetes: Job %s: result annotation: %w", name, err)
		}
		return target.TaskStatus{Done: true, Result: res}, nil
	}
	done, failed := jobFinished(j)
	if !done {
		return target.TaskStatus{}, nil
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelTask + "=" + name})
	if err != nil {
		return target.TaskStatus{}, fmt.Errorf("kubernetes: pods of Job %s: %w", name, err)
	}
	res, found := target.TaskResult{}, false
	for i := range pods.Items {
		p := &pods.Items[i]
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil {
				res.ExitCode, found = int(t.ExitCode), true
				res.Output = d.tailOutput(ctx, c, ns, p.Name)
			}
		}
	}
	if !found {
		if failed {
			// Failed without a pod that ended (deleted from outside, a
			// deadline): it ran, so it is not run again by itself.
			return target.TaskStatus{}, fmt.Errorf("kubernetes: task %s: Job %s failed without an exit code: %w", id, name, target.ErrTaskLost)
		}
		res.ExitCode = 0
	}
	b, _ := json.Marshal(res)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		cur.Annotations[AnnotTaskResult] = string(b)
		_, err = jobs.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !isNotFound(err) {
		d.log.Warn("kubernetes: could not keep a task's result on its Job", "job", name, "err", err)
	}
	return target.TaskStatus{Done: true, Result: res}, nil
}

// tailOutput is the last lines of a task pod's log ("" when the cluster
// keeps none).
func (d *Driver) tailOutput(ctx context.Context, c kubernetes.Interface, ns, pod string) string {
	n := int64(outputTail)
	b, err := c.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: ContainerName, TailLines: &n}).DoRaw(ctx)
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\n")
}

// StopTask deletes a running task's Job and its pod and waits until the
// Job is gone, so that a later StartTask runs it again; a finished task's
// Job is kept with its result.
func (d *Driver) StopTask(ctx context.Context, ref target.ServiceRef, id string) error {
	c, cerr := d.client(ref)
	if cerr != nil {
		return cerr
	}
	defer d.tasks.Lock(id)()
	ns := d.Namespace(ref)
	name := JobName(id)
	jobs := c.BatchV1().Jobs(ns)
	j, err := jobs.Get(ctx, name, metav1.GetOptions{})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kubernetes: read Job %s: %w", name, err)
	}
	if done, _ := jobFinished(j); done || j.Annotations[AnnotTaskResult] != "" {
		return nil
	}
	fg := metav1.DeletePropagationForeground
	if err := jobs.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !isNotFound(err) {
		return fmt.Errorf("kubernetes: delete Job %s: %w", name, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if isNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kubernetes: Job %s still exists 2m after its deletion", name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.opts.Poll):
		}
	}
}
