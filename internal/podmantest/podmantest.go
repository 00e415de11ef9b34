// Package podmantest runs a private podman serving the Docker Engine API for
// tests: its own socket, storage, network configuration and temporary files
// under one directory, configured as it works on Runway's machines (runc,
// cgroupfs, k8s-file logs, file events, bounded ulimits, no static_dir: with
// it podman 4.3 stalls 20 s on every container exit), optionally with a local registry
// (`docker-registry` from Debian) that the engine treats as insecure, and a
// second one that wants a user and password (htpasswd, basic auth).
//
// One engine serves a whole test package: Shared starts it on first use and
// Main stops it after the package's tests, so a package that needs no
// container pays nothing and one that does starts podman once. Stop leaves
// the machine as it found it: containers removed, the service and registry
// stopped, `podman system reset -f` on the private storage, and the netavark
// firewall chains and run directory removed when no other podman service is
// running.
//
// Tests call Shared(t); it skips the test, saying why, only when podman (or
// runc) is not installed — .ci/run installs them.
package podmantest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Options choose what Start runs beside the engine.
type Options struct {
	// Registry also starts a local registry on a loopback port and lets the
	// engine push to it without TLS.
	Registry bool
}

// Engine is a running `podman system service` on a private socket.
type Engine struct {
	// Dir holds everything the engine writes: configuration, storage,
	// socket, logs.
	Dir string
	// Host is the engine's address in DOCKER_HOST form (unix://…/podman.sock).
	Host string
	// Registry is the local registry's host:port, empty without one.
	Registry string
	// AuthRegistry is a second local registry (started with Registry) that
	// answers 401 without AuthUser and AuthPassword.
	AuthRegistry string
	AuthUser     string
	AuthPassword string

	env        []string
	network    string // its own network and bridge: rwyN on 10.89.N.0/24
	service    *exec.Cmd
	registries []*exec.Cmd
	waits      sync.WaitGroup

	helloOnce sync.Once
	hello     string
	helloErr  error
}

// HelloImage returns the tag of the tests' image (see Hello), built once
// per engine. It fails t when the image cannot be built.
func (e *Engine) HelloImage(t testing.TB) string {
	t.Helper()
	tag, err := e.Hello()
	if err != nil {
		t.Fatalf("the tests' hello image: %v", err)
	}
	return tag
}

// Hello returns the tag of the tests' (and benchmarks') image, built once
// per engine (with the podman CLI on the engine's storage): FROM scratch,
// the static examples/hello (CGO_ENABLED=0) as /hello, ENV HOST=0.0.0.0
// (hello listens on $HOST) and PORT=8080, EXPOSE 8080, CMD ["/hello"]. It
// builds examples/hello from this source tree, so it works in tests and in
// programs run from a checkout (bench/).
func (e *Engine) Hello() (string, error) {
	e.helloOnce.Do(func() {
		dir := filepath.Join(e.Dir, "hello-image")
		if e.helloErr = os.MkdirAll(dir, 0o755); e.helloErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "hello"), "./examples/hello")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			e.helloErr = fmt.Errorf("build examples/hello: %v\n%s", err, out)
			return
		}
		df := "FROM scratch\nCOPY hello /hello\nENV HOST=0.0.0.0 PORT=8080\nEXPOSE 8080\nCMD [\"/hello\"]\n"
		if e.helloErr = os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); e.helloErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		tag := "localhost/rwy-hello:test"
		if _, e.helloErr = e.Podman(ctx, "build", "--quiet", "--tag", tag, dir); e.helloErr == nil {
			e.hello = tag
		}
	})
	return e.hello, e.helloErr
}

// Missing returns why containers cannot be run here (podman or runc not
// installed), or "" when they can.
func Missing(opts Options) string {
	need := []string{"podman", "runc"}
	if opts.Registry {
		need = append(need, "docker-registry")
	}
	var missing []string
	for _, bin := range need {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("%s not installed (apt-get install -y podman runc docker-registry; .ci/run does)", strings.Join(missing, ", "))
}

// Start writes the configuration under a new directory and starts the
// engine (and the registry when asked), returning once the engine answers
// GET /_ping. A failed start cleans up what it made.
func Start(ctx context.Context, opts Options) (*Engine, error) {
	if why := Missing(opts); why != "" {
		return nil, errors.New(why)
	}
	// A short directory: the socket's path must fit sun_path (108 bytes).
	dir, err := os.MkdirTemp("", "rwy-podman-")
	if err != nil {
		return nil, fmt.Errorf("create engine dir: %w", err)
	}
	e := &Engine{Dir: dir, Host: "unix://" + filepath.Join(dir, "podman.sock")}
	if err := e.start(ctx, opts); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Engine) start(ctx context.Context, opts Options) error {
	// A network of its own (bridge, subnet): test packages run their
	// engines at the same time, and two engines on podman's default
	// network would hand out the same addresses on one bridge.
	subnet, n, err := freeSubnet()
	if err != nil {
		return err
	}
	e.network = fmt.Sprintf("rwy%d", n)
	for _, d := range []string{"tmp", "net", "storage", "run", "registry", "auth-registry"} {
		if err := os.MkdirAll(filepath.Join(e.Dir, d), 0o700); err != nil {
			return fmt.Errorf("create engine dir: %w", err)
		}
	}
	containersConf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=16384:16384", "nproc=32768:32768"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = %q
[network]
network_config_dir = %q
default_network = %q
`, filepath.Join(e.Dir, "tmp"), filepath.Join(e.Dir, "net"), e.network)
	storageConf := fmt.Sprintf(`[storage]
driver = "overlay"
graphroot = %q
runroot = %q
`, filepath.Join(e.Dir, "storage"), filepath.Join(e.Dir, "run"))
	registriesConf := ""
	if opts.Registry {
		addr, err := e.startRegistry(ctx, "registry", "")
		if err != nil {
			return err
		}
		e.Registry = addr
		if err := e.writeHtpasswd(); err != nil {
			return err
		}
		if e.AuthRegistry, err = e.startRegistry(ctx, "auth-registry", filepath.Join(e.Dir, "htpasswd")); err != nil {
			return err
		}
		registriesConf = fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n[[registry]]\nlocation = %q\ninsecure = true\n", addr, e.AuthRegistry)
	}
	files := map[string]string{
		"containers.conf": containersConf,
		"storage.conf":    storageConf,
		"registries.conf": registriesConf,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(e.Dir, name), []byte(text), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	e.env = append(os.Environ(),
		"CONTAINERS_CONF="+filepath.Join(e.Dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(e.Dir, "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF="+filepath.Join(e.Dir, "registries.conf"),
		"TMPDIR="+filepath.Join(e.Dir, "tmp"),
	)
	// podman 4.3's network create cannot name the bridge: the network's
	// file (netavark's format) is written as podman would write it.
	gw := strings.TrimSuffix(subnet, "0/24") + "1"
	idb := make([]byte, 32)
	if _, err := rand.Read(idb); err != nil {
		return err
	}
	netConf := fmt.Sprintf(`{"name": %q, "id": %q, "driver": "bridge", "network_interface": %q, "created": %q,
 "subnets": [{"subnet": %q, "gateway": %q}], "ipv6_enabled": false, "internal": false, "dns_enabled": false,
 "ipam_options": {"driver": "host-local"}}
`, e.network, hex.EncodeToString(idb), e.network, time.Now().UTC().Format(time.RFC3339Nano), subnet, gw)
	if err := os.WriteFile(filepath.Join(e.Dir, "net", e.network+".json"), []byte(netConf), 0o600); err != nil {
		return fmt.Errorf("write network config: %w", err)
	}
	logf, err := os.Create(filepath.Join(e.Dir, "service.log"))
	if err != nil {
		return fmt.Errorf("create service log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("podman", "system", "service", "--time=0", e.Host)
	cmd.Env = e.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a test's ^C reaches the test, which then stops
	// the engine in order (containers first).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start podman system service: %w", err)
	}
	e.service = cmd
	exited := make(chan error, 1)
	e.waits.Go(func() { exited <- cmd.Wait() })
	return e.await(ctx, exited)
}

// await polls GET /_ping until the engine answers, it exits, or 30 s pass.
func (e *Engine) await(ctx context.Context, exited chan error) error {
	sock := strings.TrimPrefix(e.Host, "unix://")
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}, Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/_ping", nil)
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("podman system service did not answer /_ping within 30 s: %s", e.tail("service.log"))
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("podman system service exited (%v): %s", err, e.tail("service.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// writeHtpasswd picks the auth registry's user and a random password and
// writes its htpasswd file (bcrypt, the only form the registry reads).
func (e *Engine) writeHtpasswd() error {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	e.AuthUser, e.AuthPassword = "runway", hex.EncodeToString(b)
	hash, err := bcrypt.GenerateFromPassword([]byte(e.AuthPassword), bcrypt.MinCost)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.Dir, "htpasswd"), []byte(e.AuthUser+":"+string(hash)+"\n"), 0o600)
}

// startRegistry starts docker-registry on a free loopback port, storing
// under Dir/name and wanting the users of htpasswd when it is not empty;
// the port is chosen before the registry binds it, so a lost race is
// retried.
func (e *Engine) startRegistry(ctx context.Context, name, htpasswd string) (string, error) {
	var last error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("pick registry port: %w", err)
		}
		addr := l.Addr().String()
		l.Close()
		conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
			filepath.Join(e.Dir, name), addr)
		want := http.StatusOK
		if htpasswd != "" {
			conf += fmt.Sprintf("auth:\n  htpasswd:\n    realm: runway-test\n    path: %s\n", htpasswd)
			want = http.StatusUnauthorized
		}
		confPath := filepath.Join(e.Dir, name+".yml")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			return "", fmt.Errorf("write registry config: %w", err)
		}
		logf, err := os.Create(filepath.Join(e.Dir, name+".log"))
		if err != nil {
			return "", fmt.Errorf("create registry log: %w", err)
		}
		cmd := exec.Command("docker-registry", "serve", confPath)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = cmd.Start()
		logf.Close()
		if err != nil {
			return "", fmt.Errorf("start docker-registry: %w", err)
		}
		exited := make(chan error, 1)
		e.waits.Go(func() { exited <- cmd.Wait() })
		if last = awaitHTTP(ctx, "http://"+addr+"/v2/", want, exited); last == nil {
			e.registries = append(e.registries, cmd)
			return addr, nil
		}
		_ = cmd.Process.Kill()
		<-exited
		last = fmt.Errorf("%w: %s", last, e.tail(name+".log"))
	}
	return "", fmt.Errorf("start docker-registry: %w", last)
}

func awaitHTTP(ctx context.Context, url string, want int, exited chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within 15 s", url)
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("registry exited (%v)", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// Podman runs the podman CLI on the engine's storage and configuration
// (for clean-up and for tests that look at the engine from outside the API).
func (e *Engine) Podman(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Env = e.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}

// Stop removes every container, stops the service and the registry, resets
// the private storage, removes the netavark leftovers when no other podman
// service runs, and deletes Dir. It is safe on a partly started engine.
func (e *Engine) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if e.env != nil {
		_, _ = e.Podman(ctx, "rm", "--all", "--force", "--time", "0")
	}
	procs := append([]*exec.Cmd{e.service}, e.registries...)
	for _, cmd := range procs {
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	done := make(chan struct{})
	go func() { e.waits.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		for _, cmd := range procs {
			if cmd != nil && cmd.Process != nil {
				_ = cmd.Process.Kill()
			}
		}
		<-done
	}
	if e.env != nil {
		_, _ = e.Podman(ctx, "system", "reset", "--force")
	}
	if !otherPodmanService() {
		removeNetavarkLeftovers(ctx)
	}
	// Overlay mounts of a crashed container can outlive the reset; unmount
	// what is below Dir before removing it.
	unmountBelow(e.Dir)
	_ = os.RemoveAll(e.Dir)
}

func (e *Engine) tail(name string) string {
	b, _ := os.ReadFile(filepath.Join(e.Dir, name))
	b = bytes.TrimSpace(b)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}

// otherPodmanService reports whether another `podman system service` (or a
// conmon) runs on the machine, whose firewall rules must stay.
func otherPodmanService() bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, ent := range ents {
		if _, err := strconv.Atoi(ent.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) == "conmon" {
			return true
		}
		if filepath.Base(args[0]) == "podman" && len(args) > 2 && args[1] == "system" && args[2] == "service" {
			return true
		}
	}
	return false
}

// removeNetavarkLeftovers deletes the NETAVARK-* chains (and the rules that
// jump to them) and netavark's run directory, which outlive every container
// of a rootful podman.
func removeNetavarkLeftovers(ctx context.Context) {
	for _, table := range []string{"nat", "filter"} {
		out, err := exec.CommandContext(ctx, "iptables", "-t", table, "-S").Output()
		if err != nil {
			continue
		}
		var chains []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "-N" && strings.HasPrefix(f[1], "NETAVARK"):
				chains = append(chains, f[1])
			case len(f) >= 2 && f[0] == "-A" && !strings.HasPrefix(f[1], "NETAVARK") && strings.Contains(line, "-j NETAVARK"):
				// A jump from a built-in chain: delete the same rule.
				_ = exec.CommandContext(ctx, "iptables", append([]string{"-t", table, "-D"}, f[1:]...)...).Run()
			}
		}
		for _, c := range chains {
			_ = exec.CommandContext(ctx, "iptables", "-t", table, "-F", c).Run()
		}
		for _, c := range chains {
			_ = exec.CommandContext(ctx, "iptables", "-t", table, "-X", c).Run()
		}
	}
	_ = os.RemoveAll("/run/containers/networks")
}

func unmountBelow(dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[1], dir+"/") {
			points = append(points, f[1])
		}
	}
	// Deepest first.
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

var (
	shared   = map[bool]*sharedEngine{}
	sharedMu sync.Mutex
)

type sharedEngine struct {
	once sync.Once
	eng  *Engine
	err  error
}

// Shared returns the test package's engine (with a registry when asked),
// starting it on first use; it skips t, saying why, when podman is not
// installed and fails t when the engine does not start. Packages that call
// it run their tests through Main, which stops it.
func Shared(t testing.TB, opts Options) *Engine {
	t.Helper()
	if why := Missing(opts); why != "" {
		t.Skipf("no container engine: %s", why)
	}
	sharedMu.Lock()
	s := shared[opts.Registry]
	if s == nil {
		s = &sharedEngine{}
		shared[opts.Registry] = s
	}
	sharedMu.Unlock()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.eng, s.err = Start(ctx, opts)
	})
	if s.err != nil {
		t.Fatalf("start podman: %v", s.err)
	}
	return s.eng
}

// Main runs the package's tests and then stops the engines Shared started;
// call it from TestMain: os.Exit(podmantest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	for _, s := range shared {
		if s.eng != nil {
			s.eng.Stop()
		}
	}
	return code
}

// freeSubnet picks N (from a random start) such that no interface of the
// machine has an address in 10.89.N.0/24 or is named rwyN, and returns that
// subnet and N.
func freeSubnet() (string, int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", 0, fmt.Errorf("list interfaces: %w", err)
	}
	used := map[int]bool{}
	for _, in := range ifs {
		if n, err := strconv.Atoi(strings.TrimPrefix(in.Name, "rwy")); err == nil && strings.HasPrefix(in.Name, "rwy") {
			used[n] = true
		}
		addrs, _ := in.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip := ipn.IP.To4(); ip != nil && ip[0] == 10 && ip[1] == 89 {
					used[int(ip[2])] = true
				}
			}
		}
	}
	start := int(time.Now().UnixNano()/1000+int64(os.Getpid())) % 250
	for i := range 250 {
		n := (start + i) % 250
		if !used[n] {
			return fmt.Sprintf("10.89.%d.0/24", n), n, nil
		}
	}
	return "", 0, errors.New("no free 10.89.N.0/24 subnet for a test network")
}
