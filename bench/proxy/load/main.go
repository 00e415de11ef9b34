// Command load is an open-loop HTTP load generator for bench/proxy/run.sh:
// it sends requests at a fixed rate over keep-alive connections and measures
// each latency from the moment the request was due, not when it was sent,
// so a stalled server cannot hide its queueing (no coordinated omission).
// It prints "rate=<achieved req/s> p50_ms=<..> p99_ms=<..> errors=<n>".
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:19000/", "URL to request")
	rate := flag.Float64("rate", 1000, "requests per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	conns := flag.Int("conns", 32, "connections (workers)")
	cacert := flag.String("cacert", "", "PEM file of the CA to trust for an https URL (HTTP/1.1 over TLS, as wrk)")
	flag.Parse()

	tr := &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns, DisableCompression: true}
	if *cacert != "" {
		pem, err := os.ReadFile(*cacert)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			fmt.Fprintf(os.Stderr, "%s: no PEM certificate\n", *cacert)
			os.Exit(2)
		}
		// A TLSClientConfig of its own keeps the transport on HTTP/1.1.
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	due := make(chan time.Time, 100000)
	type result struct {
		lat  []time.Duration
		errs int
	}
	results := make([]result, *conns)
	var wg sync.WaitGroup
	for i := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			for d := range due {
				resp, err := client.Get(*url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					r.errs++
					continue
				}
				r.lat = append(r.lat, time.Since(d))
			}
		}()
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / *rate)
	n := int(dur.Seconds() * *rate)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d) // pacing the schedule, not waiting for a condition
		}
		due <- at
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	errs := 0
	for _, r := range results {
		all = append(all, r.lat...)
		errs += r.errs
	}
	if len(all) == 0 {
		fmt.Fprintln(os.Stderr, "load: no successful request")
		os.Exit(1)
	}
	slices.Sort(all)
	pct := func(q float64) float64 {
		return float64(all[min(len(all)-1, int(q*float64(len(all))))].Microseconds()) / 1000
	}
	fmt.Printf("rate=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d\n", float64(len(all))/elapsed.Seconds(), pct(0.50), pct(0.99), errs)
}
