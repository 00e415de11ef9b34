// Command runway runs Runway's proxy (internal/proxy) standalone with a
// static one-route table, for bench/proxy/run.sh: every host is sent to the
// given upstream.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/runwayhq/runway/internal/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:19001", "HTTP listen address")
	upstream := flag.String("upstream", "127.0.0.1:19000", "backend address")
	host := flag.String("host", "127.0.0.1", "Host routed to the backend")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until stopped")
	flag.Parse()

	p, err := proxy.New(proxy.Options{HTTPAddr: *listen, HTTPSAddr: proxy.Off})
	if err != nil {
		log.Fatal(err)
	}
	err = p.Update(proxy.Config{
		Routes: []proxy.Route{{Environment: "bench", Service: "backend", Hosts: []string{*host},
			Backends: []proxy.Backend{{Group: "g1", Weight: 1}}}},
		Groups: map[string][]proxy.Target{"g1": {{Instance: "b1", Addr: *upstream}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	<-ctx.Done()
	p.Close()
}
