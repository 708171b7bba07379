// Package testca holds throwaway certificate authorities for tests,
// benchmarks and examples, in the spirit of sigstore-go's pkg/testing/ca: a
// root CA made in memory (or loaded from PEM files), intermediate CAs under
// it, and leaf certificates for code signing (Notary Project signatures) and
// for TLS servers and clients, all with ECDSA P-256 keys. Everything can be
// written to PEM files for programs that read them.
//
// Nothing here is fit for production: keys are thrown away with the
// process, and nothing is ever revoked.
package testca

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
	"math/big"
	"net"
	"os"
	"time"
)

// Subject returns a certificate subject with the fields Notary Project
// trusted identities name (C, ST, O, CN): country US, state WA,
// organization org and common name cn.
func Subject(org, cn string) pkix.Name {
	return pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{org}, CommonName: cn}
}

// Options shape a root CA.
type Options struct {
	// Subject is the CA's subject. Optional; default
	// Subject("vouch tests", "vouch test CA").
	Subject pkix.Name
	// NotBefore is when the CA becomes valid. Optional; default an hour
	// ago.
	NotBefore time.Time
	// NotAfter is when it expires. Optional; default a day from now.
	NotAfter time.Time
}

// CA is a certificate authority: its certificate and private key, and the
// chain above it (empty for a root).
type CA struct {
	// Cert is the CA's certificate.
	Cert *x509.Certificate
	// Key is the CA's private key.
	Key crypto.Signer
	// Parents are the certificates above Cert, nearest first, up to the
	// root; empty for a root CA.
	Parents []*x509.Certificate
}

// New makes a self-signed root CA. With zero times it is valid from an hour
// ago until a day from now.
func New(o Options) (*CA, error) {
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(24 * time.Hour)
	}
	if o.Subject.CommonName == "" {
		o.Subject = Subject("vouch tests", "vouch test CA")
	}
	return newCA(o.Subject, o.NotBefore, o.NotAfter, nil)
}

// newCA makes a CA certificate and key, signed by parent or, when parent
// is nil, by itself.
func newCA(subject pkix.Name, notBefore, notAfter time.Time, parent *CA) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	issuer, issuerKey, parents := tmpl, crypto.Signer(key), []*x509.Certificate(nil)
	if parent != nil {
		issuer, issuerKey = parent.Cert, parent.Key
		parents = append([]*x509.Certificate{parent.Cert}, parent.Parents...)
	}
	cert, err := create(tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Parents: parents}, nil
}

// Load reads a CA from a PEM certificate file and a PEM private key file
// (PKCS #8, SEC 1 EC or PKCS #1), such as `vouch serve --generate-tls`
// writes.
func Load(certFile, keyFile string) (*CA, error) {
	cert, key, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certFile)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CertOptions shape a certificate a CA issues.
type CertOptions struct {
	// Subject is the certificate's subject. Required.
	Subject pkix.Name
	// KeyUsage is the key usage. Optional; default digital signature.
	KeyUsage x509.KeyUsage
	// ExtKeyUsage are the extended key usages. Optional; default none.
	ExtKeyUsage []x509.ExtKeyUsage
	// IPAddresses and DNSNames are the subject alternative names.
	// Optional.
	IPAddresses []net.IP
	DNSNames    []string
	// NotBefore is when the certificate becomes valid. Optional; default
	// the CA's NotBefore.
	NotBefore time.Time
	// NotAfter is when it expires. Optional; default an hour before the
	// CA expires.
	NotAfter time.Time
}

// Cert is a leaf certificate with its private key and the chain that
// issued it.
type Cert struct {
	// Cert is the leaf certificate.
	Cert *x509.Certificate
	// Key is its private key.
	Key crypto.Signer
	// Chain is Cert followed by the CAs above it, up to the root: what a
	// signer presents (notation-go's signer.NewGenericSigner takes it).
	Chain []*x509.Certificate
}

// Issue makes a key and a certificate for it signed by ca.
func (ca *CA) Issue(o CertOptions) (*Cert, error) {
	if o.NotBefore.IsZero() {
		o.NotBefore = ca.Cert.NotBefore
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = ca.Cert.NotAfter.Add(-time.Hour)
	}
	if o.KeyUsage == 0 {
		o.KeyUsage = x509.KeyUsageDigitalSignature
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      o.Subject,
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     o.KeyUsage,
		ExtKeyUsage:  o.ExtKeyUsage,
		IPAddresses:  o.IPAddresses,
		DNSNames:     o.DNSNames,
	}
	cert, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	chain := append([]*x509.Certificate{cert, ca.Cert}, ca.Parents...)
	return &Cert{Cert: cert, Key: key, Chain: chain}, nil
}

// CodeSigning issues a code-signing certificate for subject, as Notary
// Project signers need (digital signature, extended key usage code
// signing), valid from the CA's start until an hour before it expires.
func (ca *CA) CodeSigning(subject pkix.Name) (*Cert, error) {
	return ca.Issue(CertOptions{Subject: subject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
}

// TLS issues a certificate for subject with the extended key usages
// usages (server and/or client authentication), valid for 127.0.0.1 and
// localhost, from an hour ago until a day from now.
func (ca *CA) TLS(subject pkix.Name, usages ...x509.ExtKeyUsage) (*Cert, error) {
	now := time.Now()
	return ca.Issue(CertOptions{
		Subject:     subject,
		ExtKeyUsage: usages,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
	})
}

// Intermediate issues an intermediate CA under ca, valid from ca's start
// until an hour before it expires.
func (ca *CA) Intermediate(subject pkix.Name) (*CA, error) {
	return newCA(subject, ca.Cert.NotBefore, ca.Cert.NotAfter.Add(-time.Hour), ca)
}

// CertPEM returns the CA's certificate in PEM.
func (ca *CA) CertPEM() []byte { return certPEM(ca.Cert) }

// Pool returns a certificate pool holding the root of ca's chain.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	root := ca.Cert
	if n := len(ca.Parents); n > 0 {
		root = ca.Parents[n-1]
	}
	pool.AddCert(root)
	return pool
}

// WriteCertFile writes the CA's certificate in PEM to path (mode 0644: a
// certificate is public).
func (ca *CA) WriteCertFile(path string) error {
	return os.WriteFile(path, ca.CertPEM(), 0o644)
}

// ClientConfig returns a TLS client configuration (TLS 1.2 at least) that
// trusts ca's root and, when client is not nil, presents it.
func (ca *CA) ClientConfig(client *Cert) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if client != nil {
		cfg.Certificates = []tls.Certificate{client.TLSCertificate()}
	}
	return cfg
}

// LoadCert reads a leaf certificate and its key from PEM files.
func LoadCert(certFile, keyFile string) (*Cert, error) {
	cert, key, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: cert, Key: key, Chain: []*x509.Certificate{cert}}, nil
}

// CertPEM returns, in PEM, the certificates a peer is shown: the leaf and
// any intermediates, not the root.
func (c *Cert) CertPEM() []byte {
	var out []byte
	for _, cert := range c.presented() {
		out = append(out, certPEM(cert)...)
	}
	return out
}

// KeyPEM returns the private key in PEM (PKCS #8).
func (c *Cert) KeyPEM() ([]byte, error) { return keyPEM(c.Key) }

// WriteFiles writes the certificates of CertPEM to certFile (mode 0644)
// and the private key to keyFile (mode 0600), in PEM.
func (c *Cert) WriteFiles(certFile, keyFile string) error {
	key, err := c.KeyPEM()
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, c.CertPEM(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, key, 0o600)
}

// TLSCertificate returns the certificates of CertPEM and the key, for a
// tls.Config.
func (c *Cert) TLSCertificate() tls.Certificate {
	tc := tls.Certificate{PrivateKey: c.Key, Leaf: c.Cert}
	for _, cert := range c.presented() {
		tc.Certificate = append(tc.Certificate, cert.Raw)
	}
	return tc
}

// presented is the chain without its root, which the peer has already.
func (c *Cert) presented() []*x509.Certificate {
	if len(c.Chain) > 1 {
		return c.Chain[:len(c.Chain)-1]
	}
	return c.Chain
}

// KeyPair is a private key and its public key, both in PEM: what programs
// that read keys from files (an API server's service-account signer) need.
type KeyPair struct {
	// Private is the private key (PKCS #8); Public the public key (PKIX).
	Private, Public []byte
}

// NewKeyPair makes an ECDSA P-256 key pair.
func NewKeyPair() (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	priv, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	return &KeyPair{Private: priv, Public: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})}, nil
}

// WriteFiles writes the private key to privFile (mode 0600) and the public
// key to pubFile (mode 0644).
func (k *KeyPair) WriteFiles(privFile, pubFile string) error {
	if err := os.WriteFile(privFile, k.Private, 0o600); err != nil {
		return err
	}
	return os.WriteFile(pubFile, k.Public, 0o644)
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// serial returns a random 128-bit serial number, so that certificates
// issued by one CA never share one.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n.Add(n, big.NewInt(1))
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func loadPair(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certFile, err)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New(keyFile + ": the key cannot sign")
	}
	return cert, key, nil
}
