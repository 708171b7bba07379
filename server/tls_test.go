package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/internal/servertest"
)

// TestMutualTLS: with a client CA file, a client without a certificate is
// refused at the handshake, and one with a certificate is served.
func TestMutualTLS(t *testing.T) {
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	images(t, sig, reg, "mtls/app")
	s := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil), MutualTLS: true})

	status, resp := verify(t, s, "/gatekeeper/v1/verify", reg.Host+"/mtls/app:signed")
	if status != http.StatusOK || !valueOf(t, resp.Response.Items[0]).IsSuccess {
		t.Fatalf("with a client certificate: %d %+v", status, resp)
	}

	anonymous := servertest.Client(t, s.Dir, false)
	_, err := anonymous.Post(s.URL+"/gatekeeper/v1/verify", "application/json", strings.NewReader(`{}`))
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("without a client certificate: err = %v, want the handshake refused", err)
	}

	// A certificate from another CA is refused as well.
	other := t.TempDir()
	if err := server.GenerateTLS(other, nil); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(other, server.ClientCertFile), filepath.Join(other, server.ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientTLS(t, s.Dir)
	cfg.Certificates = []tls.Certificate{cert}
	if _, err := handshake(s.URL, cfg); err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}

	// TLS 1.2 is refused.
	cfg = clientTLS(t, s.Dir)
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, err := handshake(s.URL, cfg); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.2: err = %v, want a protocol version alert", err)
	}
}

// TestCertificateRotation replaces the certificate files of a running
// server: new connections get the new certificate without a restart, and
// files that do not load leave the current certificate in service.
func TestCertificateRotation(t *testing.T) {
	sig := servertest.NewSigner(t)
	s := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil)})
	before, err := handshake(s.URL, clientTLS(t, s.Dir))
	if err != nil {
		t.Fatal(err)
	}

	// Rotate: a new CA and server certificate, written over the old files.
	oldCA := clientTLS(t, s.Dir)
	if err := server.GenerateTLS(s.Dir, nil); err != nil {
		t.Fatal(err)
	}
	after, err := handshake(s.URL, clientTLS(t, s.Dir))
	if err != nil {
		t.Fatalf("handshake with the new CA: %v", err)
	}
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatal("the server still presents the old certificate")
	}
	if _, err := handshake(s.URL, oldCA); err == nil {
		t.Fatal("a client trusting only the old CA accepted the new certificate")
	}
	if !strings.Contains(s.Logs.String(), "TLS files reloaded") {
		t.Fatalf("no log of the reload:\n%s", s.Logs.String())
	}

	// A broken write (a certificate that is not PEM) keeps the current one.
	if err := os.WriteFile(filepath.Join(s.Dir, server.CertFile), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	still, err := handshake(s.URL, clientTLS(t, s.Dir))
	if err != nil || still.SerialNumber.Cmp(after.SerialNumber) != 0 {
		t.Fatalf("after a broken rotation: %v, serial %v want %v", err, still, after.SerialNumber)
	}
	if !strings.Contains(s.Logs.String(), "do not load") {
		t.Fatalf("no warning about the broken files:\n%s", s.Logs.String())
	}
}

func clientTLS(t *testing.T, dir string) *tls.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, server.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(data)
	return &tls.Config{RootCAs: pool}
}

// handshake connects to url's host and returns the server's leaf
// certificate.
func handshake(url string, cfg *tls.Config) (*x509.Certificate, error) {
	host := strings.TrimPrefix(url, "https://")
	conn, err := tls.Dial("tcp", host, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// With TLS 1.3 the server checks the client's certificate after the
	// client's handshake returns; a read surfaces its verdict.
	_ = conn.SetReadDeadline(timeNowPlus())
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) {
			return nil, err
		}
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}

func timeNowPlus() time.Time { return time.Now().Add(200 * time.Millisecond) }
