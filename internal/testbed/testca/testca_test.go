package testca_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/vouch-project/vouch/internal/testbed/testca"
)

func TestChains(t *testing.T) {
	root, err := testca.New(testca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.Intermediate(testca.Subject("vouch tests", "intermediate"))
	if err != nil {
		t.Fatal(err)
	}
	for name, ca := range map[string]*testca.CA{"root": root, "intermediate": inter} {
		t.Run(name, func(t *testing.T) {
			leaf, err := ca.CodeSigning(testca.Subject("vouch tests", "signer"))
			if err != nil {
				t.Fatal(err)
			}
			inters := x509.NewCertPool()
			for _, c := range leaf.Chain[1:] {
				inters.AddCert(c)
			}
			if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
				t.Fatalf("the code-signing chain does not verify: %v", err)
			}
			if got := leaf.Chain[len(leaf.Chain)-1]; !got.Equal(root.Cert) {
				t.Fatalf("the chain ends at %s, want the root", got.Subject)
			}
		})
	}
}

// TestTLS serves HTTPS with a server certificate written to files and
// loaded back, requiring a client certificate from the same CA.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testca.New(testca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteCertFile(filepath.Join(dir, "ca.crt")); err != nil {
		t.Fatal(err)
	}
	key, err := testca.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if err := key.WriteFiles(filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")); err != nil {
		t.Fatal(err)
	}
	srvCert, err := ca.TLS(testca.Subject("vouch tests", "server"), x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	if err := srvCert.WriteFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		t.Fatal(err)
	}
	loaded, err := testca.LoadCert(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.TLS(testca.Subject("vouch tests", "client"), x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{loaded.TLSCertificate()}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientConfig(client)}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c = &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientConfig(nil)}}
	if resp, err := c.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("a client without a certificate was served")
	}
}
