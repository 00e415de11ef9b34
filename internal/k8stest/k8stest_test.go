package k8stest

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSmoke: a Deployment of two replicas becomes two ready pods on the
// fake node (controller-manager, scheduler and kwok at work), its Service
// gets an EndpointSlice of both, and scaling it to 0 removes them.
func TestSmoke(t *testing.T) {
	c := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := "default"
	labels := map[string]string{"app": "smoke"}
	two := int32(2)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "smoke"},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.test/smoke:1",
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}}}}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "smoke"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := c.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, "2 ready replicas", func() (bool, error) {
		got, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "smoke", metav1.GetOptions{})
		return err == nil && got.Status.ReadyReplicas == 2, err
	})
	Eventually(t, "an EndpointSlice of 2 ready endpoints", func() (bool, error) {
		pods, err := ReadyEndpoints(ctx, c.Client, ns, "smoke")
		return len(pods) == 2, err
	})
	zero := int32(0)
	got, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "smoke", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.Replicas = &zero
	if _, err := c.Client.AppsV1().Deployments(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, "the pods gone", func() (bool, error) {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=smoke"})
		return err == nil && len(pods.Items) == 0, err
	})
}

// TestPodLogs: a pod's log is read through the API server's pods/log,
// which asks the kubelet API of the pod's node (kwok's server).
func TestPodLogs(t *testing.T) {
	c := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.WriteLog("listening on :8080"); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "logger"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.test/logger:1"}}}}
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, "the pod's log", func() (bool, error) {
		b, err := c.Client.CoreV1().Pods("default").GetLogs("logger", &corev1.PodLogOptions{Container: "app"}).DoRaw(ctx)
		return err == nil && string(b) == "listening on :8080\n", fmt.Errorf("%q, %v", b, err)
	})
}
