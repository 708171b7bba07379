package registry_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

// TestTLS checks certificate verification and the insecure-registry
// fallbacks against go-containerregistry's registry served over HTTPS with
// a self-signed certificate, and over plain HTTP.
func TestTLS(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(tlsSrv.Close)
	tlsHost := strings.TrimPrefix(tlsSrv.URL, "https://")
	p := testbed.NewPusher(t, tlsHost, "secure")
	p.Repo.PlainHTTP = false
	p.Repo.Client = &auth.Client{Client: tlsSrv.Client()}
	p.Image("v1", "layer over TLS")

	plainHost := testbed.GGCR(t, nil).Host
	testbed.NewPusher(t, plainHost, "secure").Image("v1", "layer over HTTP")

	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())
	trusting := http.DefaultTransport.(*http.Transport).Clone()
	trusting.TLSClientConfig = &tls.Config{RootCAs: pool}

	for _, tc := range []struct {
		name    string
		host    string
		opts    registry.Options
		wantErr string
	}{
		{name: "self-signed refused", host: tlsHost, wantErr: "TLS certificate is not trusted"},
		{name: "another host insecure", host: tlsHost, opts: registry.Options{InsecureRegistries: []string{"127.0.0.1:1"}}, wantErr: "TLS certificate is not trusted"},
		{name: "insecure registry skips verification", host: tlsHost, opts: registry.Options{InsecureRegistries: []string{tlsHost}}},
		{name: "trusted by the given transport", host: tlsHost, opts: registry.Options{Transport: trusting}},
		{name: "plain HTTP refused", host: plainHost, wantErr: "answers plain HTTP"},
		{name: "insecure registry falls back to HTTP", host: plainHost, opts: registry.Options{InsecureRegistries: []string{plainHost}}},
		{name: "plain HTTP", host: plainHost, opts: registry.Options{PlainHTTP: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := open(t, newStore(t, tc.opts), tc.host, "secure")
			for range 2 { // the second call uses what the first learned
				_, err := repo.Resolve(t.Context(), "v1")
				if tc.wantErr == "" && err != nil {
					t.Fatal(err)
				}
				if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.host)) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, tc.host, tc.wantErr)
				}
			}
		})
	}
}
