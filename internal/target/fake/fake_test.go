package fake_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/target"
	"github.com/runwayhq/runway/internal/target/fake"
	"github.com/runwayhq/runway/internal/target/targettest"
)

// TestConformance runs the suite every target passes against the fake.
func TestConformance(t *testing.T) {
	targettest.Run(t, func(t *testing.T) *targettest.Harness {
		f := fake.New(fake.Options{})
		t.Cleanup(f.Close)
		return &targettest.Harness{
			Target: f,
			// The fake keeps no state on the server's side: a restarted
			// server sees the same target.
			Restart: func(*testing.T) target.Target { return f },
			Spec: func(_ *testing.T, ref target.ServiceRef) *config.Service {
				return &config.Service{Name: ref.Service, Version: "1", Env: map[string]string{}}
			},
			Send: func(t *testing.T, ref target.ServiceRef, n int) {
				// Its traffic goroutine sends requests through the routes.
				served, _ := f.Totals(ref)
				deadline := time.Now().Add(10 * time.Second)
				for {
					now, _ := f.Totals(ref)
					if now-served >= int64(n) {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d of %d requests served in 10 s", now-served, n)
					}
					<-time.After(time.Millisecond)
				}
			},
			Hold: func(t *testing.T, ref target.ServiceRef, group string) <-chan struct{} {
				release := f.Hold(group)
				ended := make(chan struct{})
				go func() {
					defer close(ended)
					defer release()
					for {
						if st, err := f.ObserveGroup(context.Background(), ref, group); err == nil && !st.Exists {
							return
						}
						<-time.After(time.Millisecond)
					}
				}()
				return ended
			},
			Task: func(_ *testing.T, ref target.ServiceRef, id string, d time.Duration, code int) (target.Task, func() int) {
				spec := &config.Service{Name: ref.Service, Env: map[string]string{
					"FAKE_TASK_TIME": d.String(), "FAKE_TASK_EXIT": strconv.Itoa(code)}}
				return target.Task{ID: id, Name: "task", Ref: ref, Release: "r", Spec: spec, Command: []string{"true"}},
					func() int { return f.TaskRuns(id) }
			},
		}
	})
}
