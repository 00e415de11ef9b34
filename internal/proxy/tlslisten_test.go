package proxy

import (
	"crypto/tls"
	"testing"
)

// TestTLS12NeedsAnAEADSuite: the proxy handshakes itself, so it enforces
// what net/http's h2 server would otherwise check (RFC 9113 §9.2.2): TLS 1.2
// only with AEAD suites.
func TestTLS12NeedsAnAEADSuite(t *testing.T) {
	p := startProxy(t, Options{})
	dial := func(suite uint16) error {
		c, err := tls.Dial("tcp", p.https, &tls.Config{InsecureSkipVerify: true, ServerName: "web.production.localhost",
			MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}, NextProtos: []string{"h2"}})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA); err == nil {
		t.Error("a TLS 1.2 handshake with a CBC suite was accepted")
	}
	if err := dial(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err != nil {
		t.Errorf("TLS 1.2 with AES-GCM: %v", err)
	}
}
