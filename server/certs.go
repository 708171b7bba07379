package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Names of the files GenerateTLS writes.
const (
	CAFile         = "ca.crt"
	CAKeyFile      = "ca.key"
	CertFile       = "tls.crt"
	KeyFile        = "tls.key"
	ClientCertFile = "client.crt"
	ClientKeyFile  = "client.key"
)

// GenerateTLS writes a self-signed CA, a server certificate for 127.0.0.1,
// localhost and hosts (DNS names or IP addresses), and a client certificate,
// with their ECDSA P-256 keys, into dir: for local use and tests, not for
// production, where cert-manager or the cluster's CA issues them. The
// server certificate and key are tls.crt and tls.key, as in a Kubernetes
// TLS secret; ca.crt is both the CA bundle a client (Gatekeeper's Provider
// caBundle) trusts and the client CA file that accepts client.crt. Keys are
// written with mode 0600. The certificates are valid for a year.
func GenerateTLS(dir string, hosts []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{CommonName: "vouch local CA", Organization: []string{"vouch"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return err
	}
	if err := writePEM(dir, CAFile, "CERTIFICATE", caDER, 0o644); err != nil {
		return err
	}
	if err := writeKey(dir, CAKeyFile, caKey); err != nil {
		return err
	}

	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "vouch", Organization: []string{"vouch"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else if h != "" {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	if err := issue(dir, CertFile, KeyFile, server, ca, caKey, now); err != nil {
		return err
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "vouch-client", Organization: []string{"vouch"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return issue(dir, ClientCertFile, ClientKeyFile, client, ca, caKey, now)
}

// issue signs tmpl with the CA and writes the certificate and a new key.
func issue(dir, certName, keyName string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serialNumber()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.AddDate(1, 0, 0)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	// Write the key first: a watcher that sees the new certificate then
	// finds its key too.
	if err := writeKey(dir, keyName, key); err != nil {
		return err
	}
	return writePEM(dir, certName, "CERTIFICATE", der, 0o644)
}

func serialNumber() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func writeKey(dir, name string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(dir, name, "PRIVATE KEY", der, 0o600)
}

// writePEM writes the file atomically (a temporary file renamed), so that
// a reader never sees half of it.
func writePEM(dir, name, blockType string, der []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := pem.Encode(tmp, &pem.Block{Type: blockType, Bytes: der}); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
