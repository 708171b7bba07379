package notation

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	"github.com/vouch-project/vouch/trust"
)

// MaxCertificateFileBytes bounds one certificate file read from
// TrustStores.Dir or TrustStores.Files.
const MaxCertificateFileBytes = 1 << 20

// TrustStores holds certificates by named store, each store named
// "TYPE:NAME" as in a trust policy's trustStores: TYPE is ca,
// signingAuthority or tsa; NAME matches [a-zA-Z0-9_.-]+. A store may take
// certificates from several of the sources below; they are merged. Stores
// are read once, by New.
//
// Certificates must be CA certificates or self-signed; those of tsa stores
// must be root CA certificates, as in notation.
type TrustStores struct {
	// Dir is a Notation configuration directory (what notation keeps under
	// $XDG_CONFIG_HOME/notation) holding truststore/x509/TYPE/NAME/ with one
	// or more PEM or DER certificate files per store. Only the stores that
	// the trust policy names are read. Optional.
	Dir string
	// Files maps "TYPE:NAME" to certificate files, PEM or DER. Optional.
	Files map[string][]string
	// Inline maps "TYPE:NAME" to PEM text. Optional.
	Inline map[string][]string
	// Emptied lists the stores whose certificates came from a key vault
	// that no longer has them (deleted or disabled): such a store may hold
	// no certificate, and then every signature the trust policy checks
	// against it fails. Optional.
	Emptied []string
}

// certStore is a read-only, in-memory truststore.X509TrustStore.
type certStore map[string][]*x509.Certificate

var storeNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// GetCertificates returns the certificates of a named store; it implements
// truststore.X509TrustStore.
func (s certStore) GetCertificates(_ context.Context, storeType truststore.Type, name string) ([]*x509.Certificate, error) {
	certs := s[string(storeType)+":"+name]
	if len(certs) == 0 {
		return nil, truststore.TrustStoreError{InnerError: fs.ErrNotExist, Msg: fmt.Sprintf("the trust store %q of type %q does not exist", name, storeType)}
	}
	return slices.Clone(certs), nil
}

// all returns the certificates of every store.
func (s certStore) all() []*x509.Certificate {
	var out []*x509.Certificate
	for _, certs := range s {
		out = append(out, certs...)
	}
	return out
}

// parseStoreKey splits "TYPE:NAME" and checks both parts.
func parseStoreKey(key string) (truststore.Type, string, error) {
	t, name, ok := strings.Cut(key, ":")
	if !ok {
		return "", "", fmt.Errorf("trust store %q: want TYPE:NAME, such as ca:acme", key)
	}
	if !slices.Contains(truststore.Types, truststore.Type(t)) {
		return "", "", fmt.Errorf("trust store %q: type %q is not one of ca, signingAuthority, tsa", key, t)
	}
	if !storeNameRE.MatchString(name) {
		return "", "", fmt.Errorf("trust store %q: name %q does not match [a-zA-Z0-9_.-]+", key, name)
	}
	return truststore.Type(t), name, nil
}

// loadTrustStores reads TrustStores.Files and TrustStores.Inline; Dir is
// read by checkAgainst, which knows which stores the policy names.
func loadTrustStores(ts TrustStores) (certStore, error) {
	s := certStore{}
	for _, key := range slices.Sorted(maps.Keys(ts.Files)) {
		t, _, err := parseStoreKey(key)
		if err != nil {
			return nil, fmt.Errorf("TrustStores.Files: %w", err)
		}
		for _, path := range ts.Files[key] {
			certs, err := trust.ReadCertificates(trust.File(path), MaxCertificateFileBytes)
			if err != nil {
				return nil, fmt.Errorf("TrustStores.Files[%q]: %w", key, err)
			}
			if err := s.add(key, t, certs, path); err != nil {
				return nil, fmt.Errorf("TrustStores.Files[%q]: %w", key, err)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(ts.Inline)) {
		t, _, err := parseStoreKey(key)
		if err != nil {
			return nil, fmt.Errorf("TrustStores.Inline: %w", err)
		}
		for i, text := range ts.Inline[key] {
			if !strings.Contains(text, "-----BEGIN") {
				return nil, fmt.Errorf("TrustStores.Inline[%q][%d]: not PEM", key, i)
			}
			src := trust.Inline(text, fmt.Sprintf("inline PEM #%d", i))
			certs, err := trust.ReadCertificates(src, MaxCertificateFileBytes)
			if err != nil {
				return nil, fmt.Errorf("TrustStores.Inline[%q]: %w", key, err)
			}
			if err := s.add(key, t, certs, src.String()); err != nil {
				return nil, fmt.Errorf("TrustStores.Inline[%q]: %w", key, err)
			}
		}
	}
	return s, nil
}

// checkAgainst reads the stores the policy names from dir (when set), then
// checks that every named store holds certificates and every configured
// store is named.
func (s certStore) checkAgainst(doc *trustpolicy.Document, dir string, emptied []string) error {
	named := map[string]bool{}
	for _, st := range doc.TrustPolicies {
		for _, key := range st.TrustStores {
			named[key] = true
		}
	}
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("TrustStores.Dir %s is not a directory", dir)
		}
		for _, key := range slices.Sorted(maps.Keys(named)) {
			t, name, err := parseStoreKey(key)
			if err != nil {
				return err
			}
			if err := s.readDir(dir, key, t, name); err != nil {
				return fmt.Errorf("TrustStores.Dir: %w", err)
			}
		}
	}
	for _, st := range doc.TrustPolicies {
		for _, key := range st.TrustStores {
			if len(s[key]) == 0 && !slices.Contains(emptied, key) {
				t, name, _ := parseStoreKey(key)
				return fmt.Errorf("trust policy statement %q names trust store %q, which holds no certificates: add them to TrustStores.Files[%q], TrustStores.Inline[%q] or TrustStores.Dir as truststore/x509/%s/%s/", st.Name, key, key, key, t, name)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(s)) {
		if !named[key] {
			return fmt.Errorf("trust store %q is configured but no trust policy statement names it in trustStores", key)
		}
	}
	return nil
}

// readDir adds the certificates in Notation's layout
// DIR/truststore/x509/TYPE/NAME/*, when that directory exists. Like
// notation, it refuses symbolic links and subdirectories.
func (s certStore) readDir(dir, key string, t truststore.Type, name string) error {
	path := filepath.Join(dir, "truststore", "x509", string(t), name)
	fi, err := os.Lstat(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("trust store %s is not a regular directory (symbolic links are not followed)", path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(path, e.Name())
		if !e.Type().IsRegular() {
			return fmt.Errorf("trust store %s: %s is not a regular file", key, p)
		}
		certs, err := trust.ReadCertificates(trust.File(p), MaxCertificateFileBytes)
		if err != nil {
			return fmt.Errorf("trust store %s: %w", key, err)
		}
		if err := s.add(key, t, certs, p); err != nil {
			return fmt.Errorf("trust store %s: %w", key, err)
		}
	}
	return nil
}

// add checks certificates read from source as notation checks its trust
// stores, and adds them to the store named key.
func (s certStore) add(key string, t truststore.Type, certs []*x509.Certificate, source string) error {
	if err := truststore.ValidateCertificates(certs); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	if t == truststore.TypeTSA {
		for _, c := range certs {
			if !bytes.Equal(c.RawSubject, c.RawIssuer) || c.CheckSignatureFrom(c) != nil {
				return fmt.Errorf("%s: certificate %q is not a root CA certificate; a tsa trust store holds root certificates only", source, c.Subject)
			}
		}
	}
	s[key] = append(s[key], certs...)
	return nil
}
