// Package httplimit bounds what one client can hold on Runway's HTTP servers
// (the proxy, the agent API and the server API): the time it may take to send
// a request's headers and its body, and how long an idle keep-alive
// connection stays open.
//
// Decision: the body is bounded by a read deadline set on the request when
// its handler starts (http.ResponseController), not by http.Server's
// ReadTimeout: the limit then counts from the end of the headers, a body
// that is late reads as a BodyTimeoutError, so handlers answer 408 and the
// proxy does not count a slow client as a failure of the instance, and
// requests without a body (most of them, and every WebSocket upgrade) pay
// one comparison. net/http clears the deadline once the body has been read
// to its end, so a response streamed afterwards is not bound by it.
package httplimit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Limits are the bounds of one HTTP server. Zero durations disable a bound.
type Limits struct {
	// Header is the time to send the request line and headers
	// (http.Server.ReadHeaderTimeout).
	Header time.Duration
	// Body is the time to send the whole request body, counted from the
	// moment its headers were read.
	Body time.Duration
	// Idle is how long a keep-alive connection may wait for its next
	// request (http.Server.IdleTimeout).
	Idle time.Duration
}

// Defaults of every Runway HTTP server; each has flags to change them.
const (
	DefaultHeader = 10 * time.Second
	DefaultBody   = time.Minute
	DefaultIdle   = 2 * time.Minute
)

// Default are the default limits.
var Default = Limits{Header: DefaultHeader, Body: DefaultBody, Idle: DefaultIdle}

// Validate says which limit is negative, naming its flag by prefix+name
// (prefix "" gives --body-timeout, --idle-timeout).
func (l Limits) Validate(prefix string) error {
	for _, x := range []struct {
		name string
		d    time.Duration
	}{{"body-timeout", l.Body}, {"idle-timeout", l.Idle}} {
		if x.d < 0 {
			return fmt.Errorf("--%s%s is %s; give a positive duration such as 1m, or 0 for no limit", prefix, x.name, x.d)
		}
	}
	return nil
}

// Server returns an http.Server for h with the limits applied.
func (l Limits) Server(h http.Handler) *http.Server {
	return &http.Server{Handler: Body(h, l.Body), ReadHeaderTimeout: l.Header, IdleTimeout: l.Idle}
}

// BodyTimeoutError is the error a handler reads from a request body that did
// not arrive within its limit. Its connection is closed after the answer.
type BodyTimeoutError struct {
	After time.Duration
}

func (e *BodyTimeoutError) Error() string {
	return fmt.Sprintf("the request body did not arrive within %s", e.After)
}

// Timeout reports true (it is a net.Error timeout for code that checks).
func (e *BodyTimeoutError) Timeout() bool { return true }

// IsBodyTimeout reports whether err is, or wraps, a BodyTimeoutError.
func IsBodyTimeout(err error) bool {
	var e *BodyTimeoutError
	return errors.As(err, &e)
}

// Body makes the body of every request h serves arrive within d (0: no
// bound).
func Body(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &body{rc: r.Body, d: d}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// body names a deadline that passed.
type body struct {
	rc io.ReadCloser
	d  time.Duration
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	var ne net.Error
	if err != nil && err != io.EOF && errors.As(err, &ne) && ne.Timeout() {
		return n, &BodyTimeoutError{After: b.d}
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }
