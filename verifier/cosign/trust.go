package cosign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/vouch-project/vouch/trust"
)

// MaxTrustFileBytes bounds a key, certificate or trusted-root file.
const MaxTrustFileBytes = 8 << 20

// trustedKey is one configured public key.
type trustedKey struct {
	// name says where the key came from: its file as configured, or
	// "keys.pem[N]".
	name string
	// fingerprint is "SHA256:" and the unpadded base64 of the SHA-256 of the
	// key's PKIX encoding, as ssh-keygen prints fingerprints.
	fingerprint string
	pub         crypto.PublicKey
	// verifiers are the ways the key may have signed: cosign signs with
	// SHA-256 whatever the curve, newer clients with the curve's own hash;
	// Ed25519 signs pure, or pre-hashed in message-signature bundles.
	verifiers []signature.Verifier
}

// ValidAtTime implements root.ValidityPeriodChecker: configured keys have no
// validity period.
func (k *trustedKey) ValidAtTime(time.Time) bool { return true }

func (k *trustedKey) label() string { return fmt.Sprintf("key %s (%s)", k.name, k.fingerprint) }

// loadKeys reads the configured public keys.
func loadKeys(src PEMSource, path string) ([]*trustedKey, error) {
	var keys []*trustedKey
	add := func(data []byte, name, where string) error {
		pubs, err := trust.ParsePublicKeys(data)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		for i, pub := range pubs {
			k, err := newTrustedKey(pub, name)
			if err != nil {
				return fmt.Errorf("%s: PEM block %d: %w", where, i, err)
			}
			keys = append(keys, k)
		}
		return nil
	}
	if err := src.each(path, add); err != nil {
		return nil, err
	}
	if err := src.eachRef(path, add); err != nil {
		return nil, err
	}
	if len(src.KMS) != len(src.KMSPEM) {
		return nil, fmt.Errorf("%s.kms: %w", path, trust.ErrNoVault)
	}
	for i, uri := range src.KMS {
		if src.KMSPEM[i] == "" {
			continue // gone from the service: trusted no more
		}
		if err := add([]byte(src.KMSPEM[i]), uri, fmt.Sprintf("%s.kms[%d] (%s)", path, i, uri)); err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(src.PEM) != "" {
		n := len(keys)
		if err := add([]byte(src.PEM), "", path+".pem"); err != nil {
			return nil, err
		}
		for i, k := range keys[n:] {
			k.name = fmt.Sprintf("%s.pem[%d]", path, i)
		}
	}
	return keys, nil
}

// each reads src's files in turn, bounded by MaxTrustFileBytes, and calls
// parse with each one's data, its name and where it is in the config
// (path.files[i] (name)).
func (s PEMSource) each(path string, parse func(data []byte, name, where string) error) error {
	for i, f := range s.Files {
		data, err := trust.File(f).Read(MaxTrustFileBytes)
		if err != nil {
			return fmt.Errorf("%s.files[%d]: %w", path, i, err)
		}
		name := s.name(i)
		if err := parse(data, name, fmt.Sprintf("%s.files[%d] (%s)", path, i, name)); err != nil {
			return err
		}
	}
	return nil
}

// eachRef calls parse with the PEM read from each of src's references
// (RefsPEM), its name (the reference) and where it is in the config
// (path.refs[i] (name)). References not read are an error
// (trust.ErrNoResolver).
func (s PEMSource) eachRef(path string, parse func(data []byte, name, where string) error) error {
	if len(s.Refs) != len(s.RefsPEM) {
		return fmt.Errorf("%s.refs: %w", path, trust.ErrNoResolver)
	}
	for i, r := range s.Refs {
		name := r.String()
		if err := parse([]byte(s.RefsPEM[i]), name, fmt.Sprintf("%s.refs[%d] (%s)", path, i, name)); err != nil {
			return err
		}
	}
	return nil
}

func newTrustedKey(pub crypto.PublicKey, name string) (*trustedKey, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	k := &trustedKey{name: name, fingerprint: "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]), pub: pub}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		v, err := signature.LoadECDSAVerifier(p, crypto.SHA256)
		if err != nil {
			return nil, err
		}
		k.verifiers = append(k.verifiers, v)
		if p.Curve != elliptic.P256() {
			v, err := signature.LoadDefaultVerifier(p)
			if err != nil {
				return nil, err
			}
			k.verifiers = append(k.verifiers, v)
		}
	case *rsa.PublicKey:
		v, err := signature.LoadRSAPKCS1v15Verifier(p, crypto.SHA256)
		if err != nil {
			return nil, err
		}
		k.verifiers = append(k.verifiers, v)
	case ed25519.PublicKey:
		v, err := signature.LoadED25519Verifier(p)
		if err != nil {
			return nil, err
		}
		ph, err := signature.LoadED25519phVerifier(p)
		if err != nil {
			return nil, err
		}
		k.verifiers = append(k.verifiers, v, ph)
	default:
		return nil, fmt.Errorf("unsupported public key type %T (want ECDSA, RSA or Ed25519)", pub)
	}
	return k, nil
}

// loadCertificates reads the configured certificate roots: PEM only.
func loadCertificates(src PEMSource, path string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	add := func(data []byte, _, where string) error {
		cs, err := trust.ParsePEMCertificates(data)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		certs = append(certs, cs...)
		return nil
	}
	if err := src.each(path, add); err != nil {
		return nil, err
	}
	if err := src.eachRef(path, add); err != nil {
		return nil, err
	}
	if strings.TrimSpace(src.PEM) != "" {
		if err := add([]byte(src.PEM), "", path+".pem"); err != nil {
			return nil, err
		}
	}
	return certs, nil
}

// loadTrustedRoot reads a trusted_root.json.
func loadTrustedRoot(path string) (*root.TrustedRoot, error) {
	data, err := trust.ReadTrustedRoot(trust.File(path), MaxTrustFileBytes)
	if err != nil {
		return nil, err
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tr, nil
}

// material is the trust that one check runs under: sigstore-go's
// root.TrustedMaterial, assembled from the configuration for the kind of
// signer found (a key, a certificate under the configured roots, a Fulcio
// certificate under the trusted root).
type material struct {
	cas   []root.CertificateAuthority
	tsas  []root.TimestampingAuthority
	rekor map[string]*root.TransparencyLog
	ct    map[string]*root.TransparencyLog
	key   *trustedKey
	// keyVerifier is the one of key's verifiers that verified the signature.
	keyVerifier signature.Verifier
}

var _ root.TrustedMaterial = (*material)(nil)

func (m *material) TimestampingAuthorities() []root.TimestampingAuthority { return m.tsas }
func (m *material) FulcioCertificateAuthorities() []root.CertificateAuthority {
	return m.cas
}
func (m *material) RekorLogs() map[string]*root.TransparencyLog { return nonNil(m.rekor) }
func (m *material) CTLogs() map[string]*root.TransparencyLog    { return nonNil(m.ct) }

// PublicKeyVerifier returns the matched key whatever the hint: bundles name
// keys by hints that no configuration knows, and the key was chosen by
// verifying the signature with it.
func (m *material) PublicKeyVerifier(string) (root.TimeConstrainedVerifier, error) {
	if m.key == nil {
		return nil, errors.New("no public key is trusted for this signature")
	}
	return keyVerifier{Verifier: m.keyVerifier, key: m.key}, nil
}

type keyVerifier struct {
	signature.Verifier
	key *trustedKey
}

func (k keyVerifier) ValidAtTime(t time.Time) bool { return k.key.ValidAtTime(t) }

func nonNil(m map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
	if m == nil {
		return map[string]*root.TransparencyLog{}
	}
	return m
}
