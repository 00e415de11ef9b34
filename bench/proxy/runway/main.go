// Command runway runs Runway's proxy (internal/proxy) standalone with a
// static one-route table, for bench/proxy/run.sh: every host is sent to the
// given upstream. With -tls-listen it also serves HTTPS with certificates of
// a local CA in -ca-dir, and -leaf writes one such certificate (for
// "localhost" and 127.0.0.1) with its key, for nginx to serve the same.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/runwayhq/runway/internal/localca"
	"github.com/runwayhq/runway/internal/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:19001", "HTTP listen address")
	upstream := flag.String("upstream", "127.0.0.1:19000", "backend address")
	host := flag.String("host", "127.0.0.1", "Host routed to the backend")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file until stopped")
	tlsListen := flag.String("tls-listen", "", "HTTPS listen address (needs -ca-dir)")
	caDir := flag.String("ca-dir", "", "local CA directory (created when missing)")
	leaf := flag.String("leaf", "", "write leaf.crt and leaf.key for localhost, signed by the CA in -ca-dir, into this directory and exit")
	flag.Parse()

	if *leaf != "" {
		if err := writeLeaf(*caDir, *leaf); err != nil {
			log.Fatal(err)
		}
		return
	}
	httpsAddr := proxy.Off
	if *tlsListen != "" {
		httpsAddr = *tlsListen
	}
	p, err := proxy.New(proxy.Options{HTTPAddr: *listen, HTTPSAddr: httpsAddr, CADir: *caDir})
	if err != nil {
		log.Fatal(err)
	}
	err = p.Update(proxy.Config{
		Routes: []proxy.Route{{Environment: "bench", Service: "backend", Hosts: []string{*host, "localhost"},
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

// writeLeaf issues, from the local CA in caDir, the certificate the proxy
// serves for "localhost" and writes it (chain) and its key as PEM files.
func writeLeaf(caDir, dir string) error {
	cfg, err := localca.TLSConfig(caDir, time.Now)
	if err != nil {
		return err
	}
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil {
		return err
	}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "leaf.crt"), chain, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "leaf.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
}
