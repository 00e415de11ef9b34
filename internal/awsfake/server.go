package awsfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// Options shape a fake. The zero value behaves like AWS at AWS's pace; tests
// compress time (TimeScale) and switch on throttling.
type Options struct {
	Region  string // default us-east-2
	Account string // default 123456789012
	// TimeScale divides the durations AWS takes by itself (task start,
	// health check intervals): 50 turns a 5 s health check interval into
	// 100 ms. Deregistration delays are not scaled: they are the drain the
	// driver asked for.
	TimeScale float64
	// ConsistencyDelay is how long a service or task just created stays
	// invisible to Describe calls (ECS API eventual consistency).
	ConsistencyDelay time.Duration
	// ThrottleEvery, when > 0, answers every n-th call of each operation
	// with the service's throttling error (the SDK retries it).
	ThrottleEvery int
	// Registry is the registry (host:port) ECR's GetAuthorizationToken
	// answers with, RegistryUser and RegistryPassword its credentials (a
	// real local registry the tests push to); empty: the account's ECR host
	// and a password no registry accepts.
	Registry, RegistryUser, RegistryPassword string
	// Runtime runs containers; nil is DefaultRuntime.
	Runtime Runtime
	Log     *slog.Logger
}

// Fake is the HTTP-boundary fake of ECS, ELBv2, CloudWatch, CloudWatch Logs
// and STS, on one loopback endpoint (every SDK client's BaseEndpoint), with
// a load balancer data plane on another.
type Fake struct {
	opt    Options
	models map[string]*Model // by service
	srv    *http.Server
	ln     net.Listener
	alb    *albPlane

	mu         sync.Mutex
	logMu      sync.Mutex // guards state.logGroups; taken after mu, or alone by containers writing
	calls      map[string]int
	violations []string
	requests   []string // operations served, in order
	st         *state

	stop chan struct{}
	wg   sync.WaitGroup
}

// New starts a fake on loopback. Close stops it.
func New(opt Options) (*Fake, error) {
	if opt.Region == "" {
		opt.Region = "us-east-2"
	}
	if opt.Account == "" {
		opt.Account = "123456789012"
	}
	if opt.TimeScale <= 0 {
		opt.TimeScale = 1
	}
	if opt.Runtime == nil {
		opt.Runtime = DefaultRuntime
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f := &Fake{opt: opt, models: map[string]*Model{}, calls: map[string]int{}, stop: make(chan struct{})}
	for _, s := range []string{"ecs", "elasticloadbalancingv2", "monitoring", "logs", "sts", "secretsmanager", "ecr"} {
		m, err := LoadModel(s)
		if err != nil {
			return nil, err
		}
		f.models[s] = m
	}
	f.st = newState(f)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.ln = ln
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	alb, err := startALB(f)
	if err != nil {
		ln.Close()
		return nil, err
	}
	f.alb = alb
	f.wg.Add(2)
	go func() { defer f.wg.Done(); _ = f.srv.Serve(ln) }()
	go func() { defer f.wg.Done(); f.loop() }()
	return f, nil
}

// URL is the API endpoint (http://127.0.0.1:port).
func (f *Fake) URL() string { return "http://" + f.ln.Addr().String() }

// LoadBalancerAddr is the address the load balancer's listener serves on.
func (f *Fake) LoadBalancerAddr() string { return f.alb.addr() }

// Region and Account of the fake.
func (f *Fake) Region() string  { return f.opt.Region }
func (f *Fake) Account() string { return f.opt.Account }

// Close stops the fake, its load balancer and every task.
func (f *Fake) Close() error {
	select {
	case <-f.stop:
		return nil
	default:
	}
	close(f.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := f.srv.Shutdown(ctx)
	f.alb.close()
	f.wg.Wait()
	f.mu.Lock()
	f.st.stopAll()
	f.mu.Unlock()
	return err
}

// Violations are the requests (and responses) the models refused since the
// fake started: a test that expects none asserts it is empty.
func (f *Fake) Violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.violations...)
}

// Calls counts the calls of operation ("ecs:CreateService") served.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r == op {
			n++
		}
	}
	return n
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ServeHTTP dispatches a call to its service by protocol.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := requestID()
	w.Header().Set("X-Amzn-RequestId", rid)
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, "json", "", rid, apiErr(405, "UnknownOperationException", "method %s", r.Method))
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeError(w, "json", "", rid, apiErr(403, "MissingAuthenticationTokenException", "the request is not signed (Signature Version 4)"))
		return
	}
	var (
		m     *Model
		op    *Operation
		input any
		proto string
	)
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		proto = "json"
		prefix, name, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
		for _, mm := range f.models {
			if mm.TargetPrefix == prefix {
				m = mm
			}
		}
		if m == nil || m.Operations[name] == nil {
			writeError(w, proto, "", rid, apiErr(400, "UnknownOperationException", "unknown operation %s", r.Header.Get("X-Amz-Target")))
			return
		}
		op = m.Operations[name]
		if input, err = decodeJSON(body); err != nil {
			f.violation(m, op, "body: "+err.Error())
			writeError(w, proto, "", rid, apiErr(400, "SerializationException", "%v", err))
			return
		}
	case strings.HasPrefix(r.URL.Path, "/service/"):
		proto = "cbor"
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/service/"), "/")
		m = f.models["monitoring"]
		if len(parts) != 3 || parts[1] != "operation" || m.Operations[parts[2]] == nil || r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
			writeError(w, proto, "", rid, apiErr(404, "UnknownOperationException", "unknown operation %s", r.URL.Path))
			return
		}
		op = m.Operations[parts[2]]
		v, err := cbor.Decode(body)
		if err == nil {
			input, err = fromCBOR(v)
		}
		if err != nil {
			f.violation(m, op, "body: "+err.Error())
			writeError(w, proto, "", rid, apiErr(400, "SerializationException", "%v", err))
			return
		}
	default:
		proto = "query"
		form, err := url.ParseQuery(string(body))
		if err != nil {
			writeError(w, proto, "", rid, apiErr(400, "MalformedQueryString", "%v", err))
			return
		}
		for _, mm := range f.models {
			if mm.Protocol == "query" && mm.APIVersion == form.Get("Version") && mm.Service != "monitoring" {
				m = mm
			}
		}
		if m == nil || m.Operations[form.Get("Action")] == nil {
			writeError(w, proto, "", rid, apiErr(400, "InvalidAction", "unknown action %s of version %s", form.Get("Action"), form.Get("Version")))
			return
		}
		op = m.Operations[form.Get("Action")]
		var unknown []string
		input, unknown = decodeQuery(form, op.Input)
		if len(unknown) > 0 {
			msg := "unknown parameters " + strings.Join(unknown, ", ")
			f.violation(m, op, msg)
			writeError(w, proto, m.XMLNamespace, rid, apiErr(400, "ValidationError", "%s", msg))
			return
		}
	}
	var errs Violations
	in, _ := m.Conform(op.Input, input, "", &errs).(map[string]any)
	if len(errs) > 0 {
		f.violation(m, op, errs.Error())
		code := "InvalidParameterException"
		if proto != "json" {
			code = "ValidationError"
		}
		writeError(w, proto, m.XMLNamespace, rid, apiErr(400, code, "%s", errs.Error()))
		return
	}
	key := m.Service + ":" + op.Name
	f.mu.Lock()
	f.calls[key]++
	throttled := f.opt.ThrottleEvery > 0 && f.calls[key]%f.opt.ThrottleEvery == 0
	if !throttled {
		f.requests = append(f.requests, key)
	}
	f.mu.Unlock()
	if throttled {
		code := "ThrottlingException"
		if proto != "json" {
			code = "Throttling"
		}
		writeError(w, proto, m.XMLNamespace, rid, apiErr(400, code, "Rate exceeded"))
		return
	}
	out, aerr := f.call(r.Context(), m.Service, op.Name, in)
	if aerr != nil {
		writeError(w, proto, m.XMLNamespace, rid, aerr)
		return
	}
	errs = nil
	outV := m.Conform(op.Output, normalize(out), "response", &errs)
	if len(errs) > 0 {
		f.violation(m, op, "the fake's response: "+errs.Error())
		writeError(w, proto, m.XMLNamespace, rid, apiErr(500, "InternalFailure", "the fake's response does not conform: %s", errs.Error()))
		return
	}
	switch proto {
	case "json":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(jsonValue(outV))
	case "cbor":
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		_, _ = w.Write(cbor.Encode(toCBOR(outV)))
	default:
		var b bytes.Buffer
		fmt.Fprintf(&b, `<%sResponse xmlns="%s">`, op.Name, m.XMLNamespace)
		wrapper := op.ResultWrapper
		if wrapper == "" {
			wrapper = op.Name + "Result"
		}
		writeXML(&b, wrapper, op.Output, outV)
		if outV == nil || len(outV.(map[string]any)) == 0 {
			b.WriteString("<" + wrapper + "></" + wrapper + ">")
		}
		fmt.Fprintf(&b, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>", rid, op.Name)
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write(b.Bytes())
	}
}

func (f *Fake) violation(m *Model, op *Operation, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.violations = append(f.violations, fmt.Sprintf("%s:%s: %s", m.Service, op.Name, msg))
	f.opt.Log.Warn("request refused by the model", "service", m.Service, "operation", op.Name, "problem", msg)
}

// call runs an operation on the state.
func (f *Fake) call(ctx context.Context, service, op string, in map[string]any) (map[string]any, *APIError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := handlers[service+":"+op]
	if !ok {
		return nil, apiErr(400, "UnsupportedOperation", "the fake does not implement %s %s", service, op)
	}
	return h(f.st, in)
}

// loop advances what AWS does by itself: tasks start and stop, health
// checks run, deployments progress.
func (f *Fake) loop() {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.mu.Lock()
			f.st.tick(time.Now())
			f.mu.Unlock()
		}
	}
}

// scaled is d as the fake takes it (Options.TimeScale).
func (f *Fake) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / f.opt.TimeScale)
}
