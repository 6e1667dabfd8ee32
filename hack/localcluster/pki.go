package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pki holds the paths of the cluster's credentials inside the state folder.
type pki struct {
	dir string
}

func (p pki) path(name string) string   { return filepath.Join(p.dir, "pki", name) }
func (p pki) caCert() string            { return p.path("ca.crt") }
func (p pki) servingCert() string       { return p.path("apiserver.crt") }
func (p pki) servingKey() string        { return p.path("apiserver.key") }
func (p pki) serviceAccountKey() string { return p.path("sa.key") }
func (p pki) serviceAccountPub() string { return p.path("sa.pub") }
func (p pki) tokenFile() string         { return p.path("tokens.csv") }
func (p pki) adminTokenFile() string    { return p.path("admin.token") }

// ensure creates whatever credentials are missing and returns the admin
// bearer token. Existing files are kept, so restarting the cluster keeps its
// kubeconfig valid.
func (p pki) ensure() (string, error) {
	if err := os.MkdirAll(p.path(""), 0o700); err != nil {
		return "", fmt.Errorf("create pki folder: %w", err)
	}
	if _, err := os.Stat(p.servingCert()); err != nil {
		if err := p.writeCertificates(); err != nil {
			return "", err
		}
	}
	if _, err := os.Stat(p.serviceAccountKey()); err != nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", fmt.Errorf("service account key: %w", err)
		}
		if err := writeKey(p.serviceAccountKey(), key); err != nil {
			return "", err
		}
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return "", fmt.Errorf("service account public key: %w", err)
		}
		if err := writePEM(p.serviceAccountPub(), "PUBLIC KEY", pub); err != nil {
			return "", err
		}
	}
	if b, err := os.ReadFile(p.adminTokenFile()); err == nil && len(b) > 0 {
		return string(b), nil
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	token := hex.EncodeToString(raw)
	// One identity in system:masters serves the admin kubeconfig and the
	// components: this cluster exists for tests, and RBAC still applies to
	// every other identity (service accounts, the controller under test).
	line := fmt.Sprintf("%s,admin,admin,system:masters\n", token)
	if err := os.WriteFile(p.tokenFile(), []byte(line), 0o600); err != nil {
		return "", fmt.Errorf("write token file: %w", err)
	}
	if err := os.WriteFile(p.adminTokenFile(), []byte(token), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return token, nil
}

// userToken returns a user's bearer token, adding the user to the token
// file (in system:masters, like admin) the first time.
func (p pki) userToken(user string) (string, error) {
	b, err := os.ReadFile(p.tokenFile())
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, ","); len(f) >= 2 && f[1] == user {
			return f[0], nil
		}
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("token of %s: %w", user, err)
	}
	token := hex.EncodeToString(raw)
	f, err := os.OpenFile(p.tokenFile(), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("open token file: %w", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s,%s,%s,system:masters\n", token, user, user); err != nil {
		return "", fmt.Errorf("write token of %s: %w", user, err)
	}
	return token, nil
}

func (p pki) writeCertificates() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("ca key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sluice-localcluster-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("ca certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("parse ca certificate: %w", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("serving key: %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(firstServiceIP)},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	if err := writePEM(p.caCert(), "CERTIFICATE", caDER); err != nil {
		return err
	}
	if err := writeKey(p.servingKey(), srvKey); err != nil {
		return err
	}
	return writePEM(p.servingCert(), "CERTIFICATE", srvDER)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key %s: %w", path, err)
	}
	return writePEM(path, "EC PRIVATE KEY", der)
}

func writePEM(path, typ string, der []byte) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
