package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/vouch-project/vouch/trust"
)

// TLSFiles name the server's certificate material. The files are read again
// when they change (a new modification time or size, looked at on each TLS
// handshake), so that a rotated certificate is served without a restart,
// the way Kubernetes updates a mounted secret. A change that does not load
// (a certificate written before its key) keeps the previous material until
// the next handshake tries again.
type TLSFiles struct {
	// CertFile is the PEM certificate chain, leaf first. Required.
	CertFile string
	// KeyFile is the PEM private key. Required.
	KeyFile string
	// ClientCAFile, when set, requires every client to present a
	// certificate issued by one of these PEM CA certificates (mutual TLS,
	// as Gatekeeper does with its client certificate). Optional.
	ClientCAFile string
}

// certReloader serves the current certificate and client CAs.
type certReloader struct {
	files TLSFiles
	log   *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	pool     *x509.CertPool
	stamps   [3]stamp
	failures [3]bool
}

// stamp identifies a version of a file.
type stamp struct {
	mod  time.Time
	size int64
}

func newCertReloader(files TLSFiles, log *slog.Logger) (*certReloader, error) {
	if files.CertFile == "" || files.KeyFile == "" {
		return nil, errors.New("server: TLS certificate and key files are required (HTTPS only)")
	}
	r := &certReloader{files: files, log: log}
	if err := r.reload(true); err != nil {
		return nil, err
	}
	return r, nil
}

// config returns the server's TLS configuration: TLS 1.3 only, the
// current certificate, and client certificates required when a client CA
// file is set.
func (r *certReloader) config() *tls.Config { return r.configFor(true) }

// configFor is config, verifying client certificates only when clientAuth
// is set (the events listener authenticates by bearer token).
func (r *certReloader) configFor(clientAuth bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			_ = r.reload(false)
			r.mu.Lock()
			defer r.mu.Unlock()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{*r.cert},
				NextProtos:   []string{"h2", "http/1.1"},
			}
			if clientAuth && r.pool != nil {
				c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, r.pool
			}
			return c, nil
		},
	}
}

// reload reads the files again if any changed. At start (first) every
// error is returned; later, errors are logged once per file version and
// the previous material stays.
func (r *certReloader) reload(first bool) error {
	paths := []string{r.files.CertFile, r.files.KeyFile, r.files.ClientCAFile}
	var now [3]stamp
	for i, p := range paths {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			if first {
				return fmt.Errorf("server: %w", err)
			}
			return nil // a file being replaced; try again on the next handshake
		}
		now[i] = stamp{fi.ModTime(), fi.Size()}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !first && now == r.stamps {
		return nil
	}
	fail := func(i int, err error) error {
		if first {
			return err
		}
		if !r.failures[i] {
			r.failures[i] = true
			r.log.Warn("TLS files changed but do not load; still serving the previous ones", "error", err.Error())
		}
		return err
	}
	changed := false
	if first || now[0] != r.stamps[0] || now[1] != r.stamps[1] {
		cert, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile)
		if err != nil {
			return fail(0, fmt.Errorf("server: TLS certificate %s and key %s: %w", r.files.CertFile, r.files.KeyFile, err))
		}
		r.cert, r.failures[0] = &cert, false
		r.stamps[0], r.stamps[1] = now[0], now[1]
		changed = true
	}
	if r.files.ClientCAFile != "" && (first || now[2] != r.stamps[2]) {
		pool, err := trust.CertPool(trust.File(r.files.ClientCAFile))
		if err != nil {
			return fail(2, fmt.Errorf("server: client CA file: %w", err))
		}
		r.pool, r.failures[2] = pool, false
		r.stamps[2] = now[2]
		changed = true
	}
	if changed && !first {
		r.log.Info("TLS files reloaded", "cert", r.files.CertFile, "clientCA", r.files.ClientCAFile)
	}
	return nil
}
