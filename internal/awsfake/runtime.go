package awsfake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Container is one essential container of a task as the fake starts it.
type Container struct {
	TaskID  string
	Image   string
	Command []string
	Env     map[string]string
	// Secrets are the values of the task definition's secrets, by variable
	// name, read from the fake's Secrets Manager when the task starts (the
	// valueFrom references until then).
	Secrets map[string]string
	Log     func(line string)
}

// Process is a running container. Handler serves its port (nil: it
// serves nothing); Exited is closed once it ended, with Code set.
type Process interface {
	Handler() http.Handler
	Exited() <-chan struct{}
	Code() int
	// Stop is SIGTERM: the container ends (code 0 when it serves, 143 for a
	// task that was still running).
	Stop()
}

// Runtime starts a container.
type Runtime func(c Container) (Process, error)

// DefaultRuntime runs the fake's own test image: the container's command
// says what it does (the image only names it).
//
//	serve            answers 200 on every path (its task id), /hold until stopped,
//	                 /digest/NAME with the SHA-256 of variable or secret NAME
//	                 (so a test proves which value a task received without
//	                 the value crossing the wire)
//	serve-errors     answers 500 on every path but the health check /healthz
//	exit DUR CODE    runs DUR, then exits with CODE
//	crash            exits with 1 at once
func DefaultRuntime(c Container) (Process, error) {
	p := &proc{exited: make(chan struct{}), stopped: make(chan struct{}), log: c.Log}
	cmd := c.Command
	if len(cmd) == 0 {
		cmd = []string{"serve"}
	}
	switch cmd[0] {
	case "serve", "serve-errors":
		errs := cmd[0] == "serve-errors"
		p.log(fmt.Sprintf("listening on :%s (task %s)", c.Env["PORT"], c.TaskID))
		p.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/healthz":
				w.WriteHeader(http.StatusOK)
			case strings.HasPrefix(r.URL.Path, "/digest/"):
				name := strings.TrimPrefix(r.URL.Path, "/digest/")
				v, ok := c.Secrets[name]
				if !ok {
					v, ok = c.Env[name]
				}
				if !ok {
					http.Error(w, "no variable "+name, http.StatusNotFound)
					return
				}
				sum := sha256.Sum256([]byte(v))
				_, _ = fmt.Fprintln(w, hex.EncodeToString(sum[:]))
			case r.URL.Path == "/hold":
				w.WriteHeader(http.StatusOK)
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
				select {
				case <-r.Context().Done():
				case <-p.stopped:
				}
			case errs:
				http.Error(w, "failing on purpose", http.StatusInternalServerError)
			default:
				_, _ = fmt.Fprintf(w, "task %s\n", c.TaskID)
			}
		})
		go func() {
			<-p.stopped
			p.log("stopping: SIGTERM")
			p.end(0)
		}()
	case "exit":
		if len(cmd) != 3 {
			return nil, fmt.Errorf("exit DUR CODE: got %q", cmd)
		}
		d, err := time.ParseDuration(cmd[1])
		if err != nil {
			return nil, err
		}
		code, err := strconv.Atoi(cmd[2])
		if err != nil {
			return nil, err
		}
		p.log("task started: " + c.TaskID)
		go func() {
			select {
			case <-time.After(d):
				p.log(fmt.Sprintf("task done: exit %d", code))
				p.end(code)
			case <-p.stopped:
				p.log("stopping: SIGTERM")
				p.end(143)
			}
		}()
	case "crash":
		p.log("boom: crashing on purpose")
		go p.end(1)
	default:
		return nil, fmt.Errorf("the fake's runtime does not know the command %q", cmd[0])
	}
	return p, nil
}

type proc struct {
	handler  http.Handler
	exited   chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
	endOnce  sync.Once
	code     int
	log      func(string)
}

func (p *proc) Handler() http.Handler   { return p.handler }
func (p *proc) Exited() <-chan struct{} { return p.exited }
func (p *proc) Code() int               { <-p.exited; return p.code }
func (p *proc) Stop()                   { p.stopOnce.Do(func() { close(p.stopped) }) }
func (p *proc) end(code int) {
	p.endOnce.Do(func() { p.code = code; close(p.exited) })
}
