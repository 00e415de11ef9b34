// Command hello is the example service used by Runway's README, demo and tests.
//
// GET / answers "hello <GREETING> from v<VERSION> (<instance id>)", /healthz
// answers 200 once the server listens, /slow?ms=N answers after N milliseconds,
// /ws echoes the messages of a WebSocket. FAIL_RATE (0..1) makes that fraction
// of requests to / answer 500; BOOT_DELAY (a Go duration) delays listening;
// `hello task DURATION CODE` runs for DURATION and exits with CODE (a task
// in images without a shell). REQUIRE names variables that must be set (else it exits 1 at once with
// "FATAL: <NAME> is not set", as a misconfigured service does). On SIGTERM it stops accepting new
// connections, finishes requests in flight and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	port := flag.String("port", os.Getenv("PORT"), "port to listen on (default $PORT, else 8080)")
	flag.Parse()
	if flag.NArg() > 0 && flag.Arg(0) == "migrate" {
		// The pre-deploy hook of the example manifest: a migration that succeeds.
		fmt.Println("migrations: nothing to do")
		if os.Getenv("MIGRATE_FAIL") != "" {
			fmt.Fprintln(os.Stderr, "migrations: failed (MIGRATE_FAIL is set)")
			os.Exit(1)
		}
		return
	}
	if flag.NArg() == 3 && flag.Arg(0) == "task" {
		// A one-off task of the tests (in images without a shell): runs
		// for DURATION, then exits with CODE.
		d, err := time.ParseDuration(flag.Arg(1))
		code, cerr := strconv.Atoi(flag.Arg(2))
		if err != nil || cerr != nil {
			fmt.Fprintln(os.Stderr, "usage: hello task DURATION CODE")
			os.Exit(2)
		}
		fmt.Println("task: running")
		time.Sleep(d)
		os.Exit(code)
	}
	if *port == "" {
		*port = "8080"
	}
	if err := run(*port); err != nil {
		log.Fatalf("hello: %v", err)
	}
}

func run(port string) error {
	for _, k := range strings.Fields(strings.ReplaceAll(os.Getenv("REQUIRE"), ",", " ")) {
		if os.Getenv(k) == "" {
			fmt.Fprintf(os.Stderr, "FATAL: %s is not set\n", k)
			os.Exit(1)
		}
	}
	greeting := envOr("GREETING", "world")
	version := envOr("RUNWAY_VERSION", envOr("VERSION", "0.0.0"))
	instance := envOr("RUNWAY_INSTANCE", hostname())
	failRate, err := parseRate(os.Getenv("FAIL_RATE"))
	if err != nil {
		return err
	}
	if d := os.Getenv("BOOT_DELAY"); d != "" {
		delay, err := time.ParseDuration(d)
		if err != nil {
			return fmt.Errorf("BOOT_DELAY %q: %w (use a Go duration such as 2s)", d, err)
		}
		time.Sleep(delay)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "slept %dms in v%s (%s)\n", ms, version, instance)
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if failRate > 0 && rand.Float64() < failRate {
			http.Error(w, "injected failure (FAIL_RATE)", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello %s from v%s (%s)\n", greeting, version, instance)
	})

	ln, err := net.Listen("tcp", net.JoinHostPort(envOr("HOST", "127.0.0.1"), port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("hello v%s listening on %s", version, ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Printf("hello v%s: stopping, finishing requests in flight", version)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1 {
		return 0, fmt.Errorf("FAIL_RATE %q: want a number from 0 to 1", s)
	}
	return f, nil
}
