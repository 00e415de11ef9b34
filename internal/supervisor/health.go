package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/runenv"
)

var healthClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// check runs one health check of an instance listening on port.
func check(ctx context.Context, h agentapi.HealthCheck, port int, dir string, env []string, vals map[string]string) agentapi.HealthResult {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout.D())
	defer cancel()
	res := agentapi.HealthResult{Time: time.Now()}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	switch h.Type {
	case agentapi.HealthHTTP:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+h.Path, nil)
		if err != nil {
			res.Detail = err.Error()
			return res
		}
		req.Header.Set("User-Agent", "runway-agent-healthcheck")
		resp, err := healthClient.Do(req)
		if err != nil {
			res.Detail = fmt.Sprintf("GET %s: %v", h.Path, err)
			return res
		}
		resp.Body.Close()
		res.OK = resp.StatusCode >= 200 && resp.StatusCode < 400
		res.Detail = fmt.Sprintf("GET %s: %s", h.Path, resp.Status)
	case agentapi.HealthTCP:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			res.Detail = fmt.Sprintf("connect %s: %v", addr, err)
			return res
		}
		c.Close()
		res.OK, res.Detail = true, "connect "+addr+": ok"
	case agentapi.HealthExec:
		args := runenv.ExpandAll(h.Command, vals)
		prog, err := runenv.Program(args[0], dir)
		if err != nil {
			res.Detail = err.Error()
			return res
		}
		cmd := exec.Command(prog, args[1:]...)
		cmd.Dir, cmd.Env = dir, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			res.Detail = err.Error()
			return res
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-ctx.Done():
			signalGroup(cmd.Process.Pid, syscall.SIGKILL)
			<-done
			err = fmt.Errorf("timed out after %s", h.Timeout.D())
		}
		if err != nil {
			res.Detail = fmt.Sprintf("%s: %v", args[0], err)
			return res
		}
		res.OK, res.Detail = true, args[0]+": exit 0"
	default:
		res.OK, res.Detail = true, "no health check: running"
	}
	return res
}
