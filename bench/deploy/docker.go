package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/podmantest"
)

// benchRepo is the repository of the bench's images: one tag per version,
// all the same bytes (podmantest's hello image: FROM scratch + the static
// examples/hello).
const benchRepo = "localhost/rwy-bench-hello"

// dockerBench is -target docker: a private podman serving the Docker Engine
// API (the tests' configuration, see internal/podmantest), the hello image
// built on it, and a client to tag versions and to measure container starts.
type dockerBench struct {
	pe    *podmantest.Engine
	e     *container.Engine
	hello string
}

func startDocker() (*dockerBench, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pe, err := podmantest.Start(ctx, podmantest.Options{})
	if err != nil {
		return nil, fmt.Errorf("podman: %w", err)
	}
	d := &dockerBench{pe: pe}
	if d.hello, err = pe.Hello(); err != nil {
		d.stop()
		return nil, err
	}
	if d.e, err = container.Connect(ctx, pe.Host); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *dockerBench) stop() {
	if d.e != nil {
		d.e.Close()
	}
	d.pe.Stop()
}

func (d *dockerBench) tag(v string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.e.Tag(ctx, d.hello, benchRepo+":"+v)
}

// leftover counts the containers of the bench's images still on the engine.
func (d *dockerBench) leftover() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := d.e.List(ctx, nil)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		if c.Running {
			n++
		}
	}
	return n, nil
}

// appStart runs the hello image n times as the agent does (published on a
// loopback port, with init) and measures from the create request until
// /healthz answers 200 through the published port, polling every
// millisecond.
func (d *dockerBench) appStart(n int) (dist, error) {
	var out []time.Duration
	hc := &http.Client{Timeout: time.Second}
	for i := range n {
		port, err := freePort()
		if err != nil {
			return dist{}, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		name := fmt.Sprintf("rwy-bench-start-%d", i)
		t0 := time.Now()
		_, err = d.e.Run(ctx, container.Spec{Name: name, Image: d.hello, Port: 8080, HostPort: port, Init: true, StopTimeout: 5 * time.Second})
		var took time.Duration
		for err == nil && ctx.Err() == nil {
			resp, gerr := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
			if gerr == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					took = time.Since(t0)
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		_ = d.e.Stop(ctx, name, 5*time.Second)
		rerr := d.e.Remove(ctx, name)
		cancel()
		if err != nil {
			return dist{}, err
		}
		if took == 0 {
			return dist{}, errors.New("the hello container did not answer /healthz within 30s")
		}
		if rerr != nil {
			return dist{}, rerr
		}
		out = append(out, took)
	}
	return distOf(out), nil
}

// dockerManifest turns examples/hello's files into the same project on
// target docker: every environment runs containers, the service runs
// benchRepo:{{VERSION}} (the image's own command) and its pre_deploy hook
// runs /hello in a one-off container. Everything else — health, scale,
// strategy, delays — stays the example's, so the figures compare with the
// process target's.
func dockerManifest(file string, b []byte) ([]byte, error) {
	var edits [][2]string
	switch file {
	case "runway.hcl":
		edits = [][2]string{{`target = "local"`, `target = "docker"`}, {`target    = "local"`, `target    = "docker"`}}
	case "hello.service.hcl":
		edits = [][2]string{
			{`command = ["./bin/hello", "--port", "{{PORT}}"]`, `image = "` + benchRepo + `:{{VERSION}}"`},
			{`pre_deploy   = ["./bin/hello", "migrate"]`, `pre_deploy   = ["/hello", "migrate"]`},
		}
	}
	for _, e := range edits {
		if !bytes.Contains(b, []byte(e[0])) {
			return nil, fmt.Errorf("examples/hello/%s no longer has %s: update bench/deploy/docker.go", file, e[0])
		}
		b = bytes.ReplaceAll(b, []byte(e[0]), []byte(e[1]))
	}
	return b, nil
}
