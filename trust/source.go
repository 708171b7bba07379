package trust

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/vouch-project/vouch/internal/untrusted"
)

// Source is one place trust material is read from: a file, PEM text held
// inline (in a config file), or a key of a Secret or ConfigMap (Ref, read
// through Resolver). Set one of Path, PEM and Ref.
type Source struct {
	// Path is a file to read. Optional; set one of Path, PEM and Ref.
	Path string
	// PEM is PEM text. Optional; set one of Path, PEM and Ref.
	PEM string
	// Ref is a key of a Secret or ConfigMap. Optional; set one of Path,
	// PEM and Ref.
	Ref *Ref
	// Resolver reads Ref. Optional; without it, reading a Ref is an error
	// (ErrNoResolver).
	Resolver Resolver
	// Name names the source in messages. Optional; default Path, Ref, or
	// "inline PEM".
	Name string
}

// File is the Source of the file at path.
func File(path string) Source { return Source{Path: path} }

// Inline is the Source of PEM text, named name in messages ("" for
// "inline PEM").
func Inline(pem, name string) Source { return Source{PEM: pem, Name: name} }

// Referenced is the Source of a key of a Secret or ConfigMap, read through
// r (nil: reading it is an error, ErrNoResolver).
func Referenced(ref Ref, r Resolver) Source { return Source{Ref: &ref, Resolver: r} }

// String returns the source's name in messages.
func (s Source) String() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Path != "":
		return s.Path
	case s.Ref != nil:
		return s.Ref.String()
	}
	return "inline PEM"
}

// inline reports whether s is PEM text rather than a file or a reference.
func (s Source) inline() bool { return s.Path == "" && s.Ref == nil }

// Read returns the source's bytes: the file's, at most max bytes (an error
// naming the file otherwise, as untrusted.ReadFile says); a reference's,
// at most max bytes, from the Resolver; or the inline text, which is in
// memory already and was bounded where it came from (the config file).
func (s Source) Read(max int64) ([]byte, error) {
	switch {
	case s.Path != "":
		return untrusted.ReadFile(s.Path, max)
	case s.Ref != nil:
		if s.Resolver == nil {
			return nil, fmt.Errorf("%s: %w", s, ErrNoResolver)
		}
		data, err := s.Resolver.Resolve(*s.Ref, max)
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > max {
			return nil, fmt.Errorf("%s: more than %d bytes", s, max)
		}
		return data, nil
	}
	if strings.TrimSpace(s.PEM) == "" {
		return nil, fmt.Errorf("%s: empty", s)
	}
	return []byte(s.PEM), nil
}

// ReadCertificates reads the certificates of s, at most max bytes: PEM
// CERTIFICATE blocks, or for a file, DER (ParseCertificates). Errors name s.
func ReadCertificates(s Source, max int64) ([]*x509.Certificate, error) {
	data, err := s.Read(max)
	if err != nil {
		return nil, err
	}
	if s.inline() && !bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%s: not PEM", s)
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return certs, nil
}

// ReadPublicKeys reads the public keys of s, at most max bytes, as
// ParsePublicKeys does. Errors name s.
func ReadPublicKeys(s Source, max int64) ([]crypto.PublicKey, error) {
	data, err := s.Read(max)
	if err != nil {
		return nil, err
	}
	keys, err := ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return keys, nil
}

// ReadTrustedRoot reads the bytes of a Sigstore trusted root
// (trusted_root.json, as `cosign trusted-root create` writes it) from s, at
// most max bytes; the caller parses them (sigstore-go's
// root.NewTrustedRootFromJSON), naming s in its errors.
func ReadTrustedRoot(s Source, max int64) ([]byte, error) {
	return s.Read(max)
}

// PEMBlocks returns every PEM block in data. Data with none, or with bytes
// that are not PEM after the last one, is an error; text before a block is
// skipped, as pem.Decode skips it.
func PEMBlocks(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, errors.New("no PEM block found")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("trailing data that is not PEM")
	}
	return blocks, nil
}

// ParseCertificates reads PEM CERTIFICATE blocks, or DER (one or more
// certificates) when data holds no PEM at all, as notation reads its trust
// stores. Text around the PEM blocks is ignored.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q, want CERTIFICATE", block.Type)
		}
		cs, err := x509.ParseCertificates(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cs...)
	}
	if len(certs) == 0 && !bytes.Contains(data, []byte("-----BEGIN")) {
		cs, err := x509.ParseCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("neither PEM nor DER certificates: %w", err)
		}
		certs = cs
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificates found")
	}
	return certs, nil
}

// ParsePEMCertificates reads PEM only, strictly (PEMBlocks): every block
// must be a CERTIFICATE; errors name the block by its index.
func ParsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	blocks, err := PEMBlocks(data)
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, 0, len(blocks))
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE", i, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", i, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// ParsePublicKeys reads PEM public keys, strictly (PEMBlocks): "PUBLIC
// KEY" blocks (PKIX: ECDSA, RSA, Ed25519), such as the cosign.pub that
// `cosign generate-key-pair` writes, and "RSA PUBLIC KEY" blocks (PKCS #1).
// Key i comes from block i; errors name the block by its index.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	blocks, err := PEMBlocks(data)
	if err != nil {
		return nil, err
	}
	keys := make([]crypto.PublicKey, 0, len(blocks))
	for i, b := range blocks {
		var pub crypto.PublicKey
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		default:
			err = fmt.Errorf("a %q block is not a public key (want PUBLIC KEY)", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", i, err)
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

// MaxCAFileBytes bounds a CA bundle read by CertPool: far above any real
// bundle (Debian's whole system store is about 200 KiB).
const MaxCAFileBytes = 4 << 20

// CertPool reads the PEM certificates of s, at most MaxCAFileBytes, into a
// pool for TLS (a client CA, a Redis server's CA). A source without a PEM
// certificate is an error naming it.
func CertPool(s Source) (*x509.CertPool, error) {
	data, err := s.Read(MaxCAFileBytes)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", s)
	}
	return pool, nil
}
