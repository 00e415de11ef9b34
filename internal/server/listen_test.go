package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestListenNeedsTLS: plain HTTP only on loopback or with InsecureListen;
// given files or a local CA serve TLS; half a pair is refused.
func TestListenNeedsTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	cases := []struct {
		name    string
		opts    Options
		tls     bool
		problem string
	}{
		{"loopback", Options{Listen: "127.0.0.1:7040"}, false, ""},
		{"localhost", Options{Listen: "localhost:7040"}, false, ""},
		{"ipv6 loopback", Options{Listen: "[::1]:7040"}, false, ""},
		{"every address", Options{Listen: "0.0.0.0:7040"}, false, "--listen 0.0.0.0:7040 is not a loopback address"},
		{"empty host", Options{Listen: ":7040"}, false, "is not a loopback address"},
		{"insecure", Options{Listen: "0.0.0.0:7040", InsecureListen: true}, false, ""},
		{"files", Options{Listen: "0.0.0.0:7040", TLSCert: cert, TLSKey: key}, true, ""},
		{"local CA", Options{Listen: "0.0.0.0:7040", TLSLocalCA: filepath.Join(dir, "ca")}, true, ""},
		{"half a pair", Options{Listen: "0.0.0.0:7040", TLSCert: cert}, false, "--tls-cert and --tls-key go together"},
		{"both kinds", Options{Listen: "0.0.0.0:7040", TLSCert: cert, TLSKey: key, TLSLocalCA: dir}, false, "not both"},
		{"missing files", Options{Listen: "0.0.0.0:7040", TLSCert: cert + ".x", TLSKey: key}, false, "load --tls-cert"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf, err := listenTLS(c.opts)
			if c.problem != "" {
				if err == nil || !strings.Contains(err.Error(), c.problem) {
					t.Fatalf("err = %v, want %q", err, c.problem)
				}
				return
			}
			if err != nil || (conf != nil) != c.tls {
				t.Fatalf("conf %v, err %v; want TLS %v", conf != nil, err, c.tls)
			}
		})
	}
}

func selfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "runway.test"}, DNSNames: []string{"runway.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}
