package podmantest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func unixClient(host string) *http.Client {
	sock := strings.TrimPrefix(host, "unix://")
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// TestSharedServesDockerAPI: the shared engine answers the Docker Engine
// API's /version on its private socket, with an API version the moby client
// negotiates down to.
func TestSharedServesDockerAPI(t *testing.T) {
	e := Shared(t, Options{})
	if e2 := Shared(t, Options{}); e2 != e {
		t.Fatal("Shared started a second engine for the same options")
	}
	resp, err := unixClient(e.Host).Get("http://engine/version")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ ApiVersion, Version string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.ApiVersion == "" {
		t.Fatalf("no ApiVersion in /version: %+v", v)
	}
	t.Logf("engine %s, API %s", v.Version, v.ApiVersion)
}

// TestStopLeavesNothing: a stopped engine's service has exited and its
// directory (storage, socket, configuration) is gone.
func TestStopLeavesNothing(t *testing.T) {
	if why := Missing(Options{Registry: true}); why != "" {
		t.Skipf("no container engine: %s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := Start(ctx, Options{Registry: true})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + e.Registry + "/v2/")
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	resp.Body.Close()
	if len(e.registries) != 2 {
		t.Fatalf("%d registries started, want 2 (open and with a login)", len(e.registries))
	}
	pids := []int{e.service.Process.Pid}
	for _, r := range e.registries {
		pids = append(pids, r.Process.Pid)
	}
	e.Stop()
	if _, err := os.Stat(e.Dir); !os.IsNotExist(err) {
		t.Errorf("engine dir %s still there after Stop (%v)", e.Dir, err)
	}
	for _, p := range pids {
		if _, err := os.Stat("/proc/" + itoa(p)); err == nil {
			t.Errorf("process %d still alive after Stop", p)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
