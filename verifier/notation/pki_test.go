package notation_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority made in the test with crypto/x509: a
// self-signed root that issues code-signing or timestamping leaves and
// signs CRLs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey

	mu      sync.Mutex
	revoked []x509.RevocationListEntry
	// crlValidity is how long a CRL served by crlServer is valid (its
	// NextUpdate); default an hour.
	crlValidity time.Duration
	// crlFetches counts the CRLs crlServer served.
	crlFetches atomic.Int64
}

// leafOptions shape a leaf certificate.
type leafOptions struct {
	// notAfter is the end of validity; default a day from now.
	notAfter time.Time
	// crlURL, when set, is the leaf's CRL distribution point.
	crlURL string
	// ocspURL, when set, is the leaf's OCSP responder (its authority
	// information access extension).
	ocspURL string
	// timestamping makes a TSA certificate instead of a code-signing one.
	timestamping bool
	// intermediate makes an intermediate CA certificate.
	intermediate bool
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// subject is a distinguished name with the C, ST and O that notation's
// x509.subject identities require.
func subject(cn string) pkix.Name {
	return pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"Vouch Test"}, CommonName: cn}
}

func newCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               subject(cn),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
var oidTimestamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}

// leaf issues a certificate and returns its key and the chain, leaf first.
func (ca *testCA) leaf(t testing.TB, cn string, o leafOptions) (*ecdsa.PrivateKey, []*x509.Certificate) {
	t.Helper()
	key := newKey(t)
	notAfter := o.notAfter
	if notAfter.IsZero() {
		notAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      subject(cn),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	if o.crlURL != "" {
		tmpl.CRLDistributionPoints = []string{o.crlURL}
	}
	if o.ocspURL != "" {
		tmpl.OCSPServer = []string{o.ocspURL}
	}
	if o.timestamping {
		// RFC 3161 2.3: exactly one extended key usage, timestamping, and
		// marked critical, which crypto/x509 does not do on its own.
		value, err := asn1.Marshal([]asn1.ObjectIdentifier{oidTimestamping})
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtKeyUsage = nil
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: value}}
	}
	if o.intermediate {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageCertSign|x509.KeyUsageCRLSign, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, []*x509.Certificate{cert, ca.cert}
}

// pem returns the CA certificate as PEM text.
func (ca *testCA) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
}

// files writes the CA's certificate and private key as PEM files into dir,
// for openssl, and returns their paths.
func (ca *testCA) files(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if err := os.WriteFile(certFile, []byte(ca.pem()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// revoke adds cert to the CA's CRL.
func (ca *testCA) revoke(cert *x509.Certificate) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.revoked = append(ca.revoked, x509.RevocationListEntry{SerialNumber: cert.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
}

// crlServer serves the CA's current CRL, made with
// x509.CreateRevocationList, over HTTP on 127.0.0.1 and returns its URL.
func (ca *testCA) crlServer(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ca.crlFetches.Add(1)
		ca.mu.Lock()
		entries := append([]x509.RevocationListEntry(nil), ca.revoked...)
		validity := ca.crlValidity
		ca.mu.Unlock()
		if validity == 0 {
			validity = time.Hour
		}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number:                    big.NewInt(time.Now().UnixNano()),
			ThisUpdate:                time.Now().Add(-time.Minute),
			NextUpdate:                time.Now().Add(validity),
			RevokedCertificateEntries: entries,
		}, ca.cert, crypto.Signer(ca.key))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(der)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/ca.crl"
}
