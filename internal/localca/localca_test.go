package localca

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLocalCACreatedOnceWithPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca1, err := LoadOrCreate(dir, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CertFile, KeyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v, want 0600", f, err, st.Mode())
		}
	}
	ca2, err := LoadOrCreate(dir, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if !ca1.cert.Equal(ca2.cert) {
		t.Fatal("second load created a new CA")
	}
	os.Remove(filepath.Join(dir, KeyFile))
	if _, err := LoadOrCreate(dir, time.Now); err == nil {
		t.Fatal("a CA certificate without its key was accepted or silently replaced")
	}
}

func TestLeafCertificatesCachedAndRenewed(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ca, err := LoadOrCreate(t.TempDir(), clock)
	if err != nil {
		t.Fatal(err)
	}
	hello := &tls.ClientHelloInfo{ServerName: "Web.Production.localhost"}
	c1, err := ca.GetCertificate(hello)
	if err != nil {
		t.Fatal(err)
	}
	if c2, _ := ca.GetCertificate(hello); c2 != c1 {
		t.Fatal("second handshake issued a new certificate")
	}
	if _, err := c1.Leaf.Verify(verifyOpts(ca, "web.production.localhost", now)); err != nil {
		t.Fatalf("leaf does not verify against the CA: %v", err)
	}
	now = now.Add(leafLifetime - leafRenewBefore + time.Hour)
	c3, err := ca.GetCertificate(hello)
	if err != nil || c3 == c1 || !c3.Leaf.NotAfter.After(c1.Leaf.NotAfter) {
		t.Fatalf("certificate close to expiry not renewed (%v)", err)
	}
	if c, err := ca.GetCertificate(&tls.ClientHelloInfo{}); err != nil || c.Leaf.DNSNames[0] != "localhost" {
		t.Fatalf("no SNI: %v", err)
	}
	if _, err := ca.GetCertificate(&tls.ClientHelloInfo{ServerName: "bad name/"}); err == nil {
		t.Fatal("issued a certificate for an invalid name")
	}
}

func verifyOpts(ca *CA, name string, now time.Time) x509.VerifyOptions {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: now}
}
