// Package localca is the local certificate authority: created once in a
// directory (ca.crt, ca.key, mode 0600), it issues a certificate for each
// TLS server name on first use and renews it before it expires. The
// agent's proxy serves HTTPS with it; the server's API with
// `--tls-local-ca`. Leaf certificates live 30 days, are renewed 10 days
// before expiry, and are kept in memory. It is a leaf: it imports only
// fsutil and naming.
package localca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/naming"
)

// File names of the local certificate authority inside its directory.
const (
	CertFile = "ca.crt"
	KeyFile  = "ca.key"
)

// Leaf certificates live leafLifetime and are replaced when less than
// leafRenewBefore remains, so a long-running agent never serves an expired one.
const (
	caLifetime      = 10 * 365 * 24 * time.Hour
	leafLifetime    = 30 * 24 * time.Hour
	leafRenewBefore = 10 * 24 * time.Hour
	maxLeaves       = 4096
)

// CA is the certificate authority Runway creates once per agent data
// dir. It issues a certificate for each SNI host name on first use.
type CA struct {
	cert     *x509.Certificate
	key      crypto.Signer
	certPath string
	now      func() time.Time

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// LoadOrCreate reads dir/ca.crt and dir/ca.key, creating both (0600) if
// neither exists.
func LoadOrCreate(dir string, now func() time.Time) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		var err error
		certPEM, keyPEM, err = createCA(now())
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create CA dir: %w", err)
		}
		// Key first: a crash between the writes leaves a key without a
		// certificate, reported below instead of silently replaced.
		if err := fsutil.WriteFileAtomic(keyPath, keyPEM, fsutil.FileMode); err != nil {
			return nil, err
		}
		if err := fsutil.WriteFileAtomic(certPath, certPEM, fsutil.FileMode); err != nil {
			return nil, err
		}
	case cerr != nil:
		return nil, fmt.Errorf("read CA certificate: %w (remove %s to create a new CA)", cerr, keyPath)
	case kerr != nil:
		return nil, fmt.Errorf("read CA key: %w (remove %s to create a new CA)", kerr, certPath)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA from %s: %w", dir, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !cert.IsCA {
		return nil, fmt.Errorf("load CA from %s: not a CA certificate with a signing key", dir)
	}
	return &CA{cert: cert, key: key, certPath: certPath, now: now, leaves: map[string]*tls.Certificate{}}, nil
}

func createCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{"Runway"}, CommonName: "Runway local CA " + host},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

// CertPath is the file of the CA's certificate (the one to trust).
func (ca *CA) CertPath() string { return ca.certPath }

// GetCertificate is tls.Config.GetCertificate: the cached certificate for
// the SNI name, issued (or renewed) when missing or close to expiry.
func (ca *CA) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := hello.ServerName
	if name == "" {
		name = "localhost" // clients connecting to an IP send no SNI
	}
	name, ok := naming.NormalizeHost(name)
	if !ok {
		return nil, fmt.Errorf("tls: no certificate for server name %q", hello.ServerName)
	}
	now := ca.now()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c := ca.leaves[name]; c != nil && now.Add(leafRenewBefore).Before(c.Leaf.NotAfter) {
		return c, nil
	}
	c, err := ca.issue(name, now)
	if err != nil {
		return nil, err
	}
	if len(ca.leaves) >= maxLeaves {
		clear(ca.leaves) // bounded memory against clients inventing names
	}
	ca.leaves[name] = c
	return c, nil
}

func (ca *CA) issue(name string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key for %s: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{Organization: []string{"Runway"}, CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(trimBrackets(name)); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func trimBrackets(s string) string {
	if len(s) > 1 && s[0] == '[' && s[len(s)-1] == ']' {
		return s[1 : len(s)-1]
	}
	return s
}

// TLSConfig is a TLS configuration whose certificates the local CA in
// dir issues on demand (the server's API uses it with `--tls-local-ca`).
func TLSConfig(dir string, now func() time.Time) (*tls.Config, error) {
	if now == nil {
		now = time.Now
	}
	ca, err := LoadOrCreate(dir, now)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: ca.GetCertificate}, nil
}
