// Command podmanenv runs a private podman serving the Docker Engine API (the
// configuration Runway's tests use, see internal/podmantest) until it gets
// SIGINT or SIGTERM, then removes everything it made. It writes the engine's
// DOCKER_HOST to -out once the engine answers: `make demo-containers` uses it
// so the demo needs no podman set-up and leaves the machine as it found it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/runwayhq/runway/internal/podmantest"
)

func main() {
	out := flag.String("out", "", "write the engine's DOCKER_HOST to this file once it answers")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "podmanenv: -out FILE is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start, cancel := context.WithTimeout(ctx, 2*time.Minute)
	e, err := podmantest.Start(start, podmantest.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "podmanenv:", err)
		os.Exit(1)
	}
	defer e.Stop()
	if err := os.WriteFile(*out, []byte(e.Host+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "podmanenv:", err)
		return
	}
	<-ctx.Done()
}
