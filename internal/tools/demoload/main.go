// Command demoload sends steady traffic through Runway's proxy until it gets
// SIGINT or SIGTERM, then prints what it counted: the demo uses it to show
// that no request failed while releases ran.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/runwayhq/runway/internal/loadtest"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/", "proxy URL")
	host := flag.String("host", "hello.development.localhost", "Host header")
	c := flag.Int("c", 4, "concurrent clients")
	interval := flag.Duration("interval", 5*time.Millisecond, "pause between two requests of a client")
	out := flag.String("out", "", "write the summary as JSON to this file")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := loadtest.Start(ctx, loadtest.Options{URL: *url, Host: *host, Concurrency: *c, Interval: *interval}).Wait()
	fmt.Println(res.String())
	for _, f := range res.Failures {
		fmt.Printf("  failed at %s: status %d %s\n", f.At.Format("15:04:05.000"), f.Status, f.Err)
	}
	if *out != "" {
		sent, failed, versions := res.Snapshot()
		b, _ := json.Marshal(map[string]any{"sent": sent, "failed": failed, "versions": versions})
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
