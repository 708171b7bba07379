package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	vouch "github.com/vouch-project/vouch"
)

// fail turns an error from oras-go or the network into one a person can act
// on: naming the host when it could not be reached or refused the
// credentials, matching vouch.ErrNotFound for every 404. No error carries a
// credential: oras-go's errors hold method, URL and the registry's message.
func (r *repository) fail(err error) error {
	if err == nil {
		return nil
	}
	var limit *vouch.LimitError
	var mismatch *vouch.DigestMismatchError
	if errors.As(err, &limit) || errors.As(err, &mismatch) || errors.Is(err, vouch.ErrNotFound) {
		return err
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("authentication failed for %s: %w", r.host, err)
		case http.StatusNotFound:
			return &notFoundError{err}
		}
		return err
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return fmt.Errorf("authentication failed for %s: no credentials configured: %w", r.host, err)
	}
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &hostnameErr) {
		return fmt.Errorf("registry %s could not be reached: its TLS certificate is not trusted: %w", r.host, err)
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		return fmt.Errorf("registry %s could not be reached over HTTPS: it answers plain HTTP (use plain HTTP, or list it as an insecure registry): %w", r.host, err)
	}
	if unreachable(err) {
		return fmt.Errorf("registry %s could not be reached: %w", r.host, err)
	}
	return err
}

// unreachable tells failures to connect from everything else.
func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// notFoundError is a registry's 404 that oras-go did not map to
// ErrNotFound itself (an unknown repository, for one).
type notFoundError struct{ err error }

func (e *notFoundError) Error() string   { return e.err.Error() }
func (e *notFoundError) Unwrap() []error { return []error{e.err, vouch.ErrNotFound} }
