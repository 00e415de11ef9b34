// Command fasthttp is a bare reverse proxy on github.com/valyala/fasthttp,
// the "Go floor" peer of bench/proxy/run.sh: one keep-alive client pool to
// one backend, X-Forwarded-For set, nothing else (no routing, balancing,
// statistics or framing checks). It is its own module so Runway does not
// depend on fasthttp. Build and run it as a peer:
//
//	go build -C bench/proxy/fasthttp -o /tmp/fhproxy .
//	PEERS='fasthttp=/tmp/fhproxy -listen 127.0.0.1:{PORT} -upstream {BACKEND}' bash bench/proxy/run.sh
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:19020", "address to listen on")
	upstream := flag.String("upstream", "127.0.0.1:19000", "the backend's address")
	flag.Parse()
	backend := &fasthttp.HostClient{Addr: *upstream, MaxConns: 1024}
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.Request.Header.Set("X-Forwarded-For", ctx.RemoteIP().String())
		if err := backend.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	}
	log.Fatal(fasthttp.ListenAndServe(*listen, handler))
}
