package benchenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/vouch-project/vouch/internal/testbed"
)

// NotationSigner signs as `notation sign` does, with notation-go: a JWS
// envelope, a test CA and an ECDSA P-256 code-signing certificate.
type NotationSigner struct {
	*testbed.Notary
	// CAFile is the CA certificate in PEM.
	CAFile string
}

// NewNotationSigner makes a CA and a signing certificate valid for a day
// and writes the CA to dir/ca.pem.
func NewNotationSigner(dir string) (*NotationSigner, error) {
	n, err := testbed.NewNotary(testbed.NotaryOptions{Organization: "vouch bench", CAName: "bench CA", SignerName: "bench signer"})
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := n.CA.WriteCertFile(caFile); err != nil {
		return nil, err
	}
	return &NotationSigner{Notary: n, CAFile: caFile}, nil
}

// NotationConfig writes the notation CLI's configuration (a trust store
// "bench" holding caFile, and a trust policy trusting it for every
// registry, strict) under dir, and returns the XDG_CONFIG_HOME to run the
// CLI with.
func NotationConfig(dir, caFile string) (string, error) {
	xdg := filepath.Join(dir, "xdg")
	store := filepath.Join(xdg, "notation", "truststore", "x509", "ca", "bench")
	if err := os.MkdirAll(store, 0o755); err != nil {
		return "", err
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(store, "ca.pem"), ca, 0o644); err != nil {
		return "", err
	}
	policy := `{"version":"1.0","trustPolicies":[{"name":"bench","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:bench"],"trustedIdentities":["*"]}]}`
	return xdg, os.WriteFile(filepath.Join(xdg, "notation", "trustpolicy.json"), []byte(policy), 0o644)
}

// CosignKeys makes a cosign key pair in dir with the cosign CLI and
// returns the private and public key paths.
func (e *Env) CosignKeys(dir string) (key, pub string, err error) {
	cmd := exec.Command(e.Bin["cosign"], "generate-key-pair")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("cosign generate-key-pair: %v\n%s", err, out)
	}
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub"), nil
}

// CosignSign signs ref (HOST/REPO@DIGEST) with the cosign CLI, without the
// transparency log, in cosign's tag layout (sha256-<hex>.sig).
func (e *Env) CosignSign(key, ref string) error {
	cmd := exec.Command(e.Bin["cosign"], "sign", "--yes", "--key", key, "--tlog-upload=false", "--allow-http-registry", ref)
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "HOME="+e.Dir("cosign-home"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cosign sign %s: %v\n%s", ref, err, out)
	}
	return nil
}

// RatifyConfig writes a Ratify v1 config.json to path: the oras store over
// plain HTTP with its signature cache in cacheDir, and a notation verifier
// trusting caFile (when set) or a cosign verifier with the public key
// cosignPub (when set).
func RatifyConfig(path, cacheDir, caFile, cosignPub string) error {
	store := map[string]any{"name": "oras", "useHttp": true, "localCachePath": cacheDir}
	var verifiers []any
	if caFile != "" {
		verifiers = append(verifiers, map[string]any{
			"name":              "notation",
			"artifactTypes":     "application/vnd.cncf.notary.signature",
			"verificationCerts": []string{caFile},
			"trustPolicyDoc": map[string]any{
				"version": "1.0",
				"trustPolicies": []any{map[string]any{
					"name": "default", "registryScopes": []string{"*"},
					"signatureVerification": map[string]string{"level": "strict"},
					"trustStores":           []string{"ca:certs"}, "trustedIdentities": []string{"*"},
				}},
			},
		})
	}
	if cosignPub != "" {
		store["cosignEnabled"] = true
		verifiers = append(verifiers, map[string]any{
			"name":          "cosign",
			"artifactTypes": "application/vnd.dev.cosign.artifact.sig.v1+json",
			"key":           cosignPub,
		})
	}
	cfg := map[string]any{
		"store":    map[string]any{"version": "1.0.0", "plugins": []any{store}},
		"policy":   map[string]any{"version": "1.0.0", "plugin": map[string]any{"name": "configPolicy"}},
		"verifier": map[string]any{"version": "1.0.0", "plugins": verifiers},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// SignMany attaches n Notary Project signatures of desc to repo on host
// and writes the referrers tag index once at the end, instead of letting
// oras-go rewrite a growing index after every signature (quadratic: an
// hour for 1,000 signatures). The registry ends up as if each signature
// had been pushed by notation; desc must have no referrers yet.
func (s *NotationSigner) SignMany(ctx context.Context, host, repo string, desc ocispec.Descriptor, n int) error {
	inner, err := testbed.Repo(host, repo)
	if err != nil {
		return err
	}
	// Pretend the registry has the referrers API, so that oras-go does not
	// maintain the index; this recorder collects what the index lists.
	if err := inner.SetReferrersCapability(true); err != nil {
		return err
	}
	rec := &recorder{Repository: inner}
	for i := 0; i < n; i++ {
		if err := s.Sign(ctx, rec, desc); err != nil {
			return err
		}
	}
	tag := strings.Replace(desc.Digest.String(), ":", "-", 1)
	_, err = testbed.PushIndex(ctx, inner, tag, rec.pushed...)
	return err
}

// recorder passes pushes through to a repository and records the
// descriptors of the manifests with a subject, as a referrers index lists
// them.
type recorder struct {
	*remote.Repository
	mu     sync.Mutex
	pushed []ocispec.Descriptor
}

func (r *recorder) Push(ctx context.Context, expected ocispec.Descriptor, content io.Reader) error {
	if expected.MediaType != ocispec.MediaTypeImageManifest {
		return r.Repository.Push(ctx, expected, content)
	}
	data, err := io.ReadAll(io.LimitReader(content, 4<<20))
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	if m.Subject != nil {
		d := ocispec.Descriptor{MediaType: expected.MediaType, Digest: expected.Digest, Size: expected.Size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		if d.ArtifactType == "" {
			d.ArtifactType = m.Config.MediaType
		}
		r.mu.Lock()
		r.pushed = append(r.pushed, d)
		r.mu.Unlock()
	}
	return r.Repository.Push(ctx, expected, bytes.NewReader(data))
}
