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
	"crypto/sha256"
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
		// The pre-deploy hook of the example manifest: a migration that
		// succeeds. LOG_ENV makes it a careless one, printing values.
		for _, k := range strings.Fields(strings.ReplaceAll(os.Getenv("LOG_ENV"), ",", " ")) {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
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
	// LOG_ENV names variables whose values the app logs at start: a careless
	// service, for the tests of Runway's redaction of instance logs.
	for _, k := range strings.Fields(strings.ReplaceAll(os.Getenv("LOG_ENV"), ",", " ")) {
		log.Printf("%s=%s", k, os.Getenv(k))
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
	// The SHA-256 of a variable (such as a secret Runway gave the
	// instance): shows which value an instance has without showing it.
	mux.HandleFunc("/env-digest/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.PathValue("name"))
		if !ok {
			http.Error(w, r.PathValue("name")+" is not set", http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, "%x\n", sha256.Sum256([]byte(v)))
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
	srv := &http.Server{Handler: accessLog(mux), ReadHeaderTimeout: 10 * time.Second}
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

// accessLog prints one line per request but health checks, such as
// "GET / 200 43µs", to stdout (what runway logs shows).
func accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/ws" {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		fmt.Printf("%s %s %d %s\n", r.Method, r.URL.Path, sw.status, time.Since(start).Round(time.Microsecond))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

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
