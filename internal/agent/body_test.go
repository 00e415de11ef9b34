package agent

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/httplimit"
)

// TestAPISlowBodyCut: a request body that does not arrive within the API's
// body limit is answered 408 naming the flag.
func TestAPISlowBodyCut(t *testing.T) {
	a, _ := startAgent(t, Options{HTTP: httplimit.Limits{Header: 5 * time.Second, Body: 300 * time.Millisecond, Idle: time.Minute}})
	conn, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/groups HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer %s\r\nContent-Length: 500\r\n\r\n{\"name\":", a.Token())
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "--api-body-timeout") {
		t.Errorf("slow body: %d %s, want 408 naming --api-body-timeout", resp.StatusCode, b)
	}
}
