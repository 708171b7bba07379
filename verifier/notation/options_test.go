package notation_test

import (
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	notationgo "github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/signer"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/verifier/notation"
)

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadTrustPolicy(t *testing.T) {
	dir := t.TempDir()
	valid := `{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:acme"],"trustedIdentities":["*"]}]}`
	tests := []struct {
		name, data, err string
	}{
		{"valid", valid, ""},
		{"unknown field", strings.Replace(valid, `"name":"p"`, `"name":"p","nmae":"q"`, 1), `unknown field "nmae"`},
		{"trailing data", valid + `{}`, "data after the document"},
		{"not JSON", `version: 1.0`, "malformed JSON"},
		{"bad version", strings.Replace(valid, `"1.0"`, `"2.0"`, 1), `unsupported version "2.0"`},
		{"bad level", strings.Replace(valid, `"strict"`, `"strictest"`, 1), `invalid signature verification level "strictest"`},
		{"bad scope", strings.Replace(valid, `["*"]`, `["Not A Scope"]`, 1), `registry scope "Not A Scope" is not valid`},
		{"too big", `{"version":"1.0",` + strings.Repeat(" ", notation.MaxTrustPolicyBytes) + `}`, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".json", tc.data)
			doc, err := notation.LoadTrustPolicy(path)
			if tc.err == "" {
				if err != nil || doc.TrustPolicies[0].Name != "p" {
					t.Fatalf("doc %+v, err %v", doc, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.err)
			}
		})
	}
	if _, err := notation.LoadTrustPolicy(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	ca := newCA(t, "Root")
	_, leafChain := ca.leaf(t, "leaf", leafOptions{})
	leafPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafChain[0].Raw}))
	_, interChain := ca.leaf(t, "intermediate", leafOptions{intermediate: true})
	interPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: interChain[0].Raw}))
	policy := func(stores ...string) *trustpolicy.Document {
		return &trustpolicy.Document{Version: "1.0", TrustPolicies: []trustpolicy.TrustPolicy{{
			Name: "p", RegistryScopes: []string{"*"}, TrustStores: stores, TrustedIdentities: []string{"*"},
			SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: "strict"},
		}}}
	}
	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.pem", ca.pem())
	tests := []struct {
		name string
		opts notation.Options
		err  string
	}{
		{"no policy", notation.Options{}, "Options.TrustPolicy is required"},
		{"invalid policy", notation.Options{TrustPolicy: &trustpolicy.Document{Version: "1.0"}}, "zero trust policy statements"},
		{"missing store", notation.Options{TrustPolicy: policy("ca:acme")}, `names trust store "ca:acme", which holds no certificates`},
		{"unused store", notation.Options{TrustPolicy: policy("ca:acme"), TrustStores: notation.TrustStores{Inline: map[string][]string{"ca:acme": {ca.pem()}, "ca:other": {ca.pem()}}}}, `trust store "ca:other" is configured but no trust policy statement names it`},
		{"bad store type", notation.Options{TrustPolicy: policy("ca:acme"), TrustStores: notation.TrustStores{Inline: map[string][]string{"root:acme": {ca.pem()}}}}, `type "root" is not one of`},
		{"bad store name", notation.Options{TrustPolicy: policy("ca:acme"), TrustStores: notation.TrustStores{Inline: map[string][]string{"ca:a/b": {ca.pem()}}}}, `name "a/b" does not match`},
		{"not PEM", notation.Options{TrustPolicy: policy("ca:acme"), TrustStores: notation.TrustStores{Inline: map[string][]string{"ca:acme": {"hello"}}}}, "not PEM"},
		{"leaf is not a CA", notation.Options{TrustPolicy: policy("ca:acme"), TrustStores: notation.TrustStores{Inline: map[string][]string{"ca:acme": {leafPEM}}}}, "is not a CA certificate or self-signed"},
		{"tsa store needs a root", notation.Options{TrustPolicy: policy("ca:acme", "tsa:t"), TrustStores: notation.TrustStores{Inline: map[string][]string{"ca:acme": {ca.pem()}, "tsa:t": {interPEM}}}}, "is not a root CA certificate"},
		{"missing file", notation.Options{TrustPolicy: policy("ca:acme"), TrustStores: notation.TrustStores{Files: map[string][]string{"ca:acme": {filepath.Join(dir, "nope.pem")}}}}, "nope.pem"},
		{"dir is not a directory", notation.Options{TrustPolicy: policy("ca:acme"), TrustStores: notation.TrustStores{Dir: caFile}}, "is not a directory"},
		{"bad layout scope", notation.Options{TrustPolicy: policy("ca:acme"), TrustStores: notation.TrustStores{Files: map[string][]string{"ca:acme": {caFile}}}, LayoutScope: "no-slash"}, "Options.LayoutScope"},
		{"negative timeout", notation.Options{TrustPolicy: policy("ca:acme"), TrustStores: notation.TrustStores{Files: map[string][]string{"ca:acme": {caFile}}}, Revocation: notation.Revocation{Timeout: -1}}, "Revocation.Timeout is negative"},
		{"valid", notation.Options{TrustPolicy: policy("ca:acme"), TrustStores: notation.TrustStores{Files: map[string][]string{"ca:acme": {caFile}}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := notation.New(tc.opts)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v.Name() != notation.DefaultName || !v.Handles(notation.ArtifactType) || v.Handles("application/spdx+json") {
					t.Fatalf("Name %q, Handles wrong", v.Name())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.err)
			}
		})
	}
}

// memRepository serves blobs from memory, for calling Verify directly.
type memRepository map[digest.Digest][]byte

func (m memRepository) Resolve(context.Context, string) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, vouch.ErrNotFound
}

func (m memRepository) Fetch(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	data, ok := m[desc.Digest]
	if !ok {
		return nil, vouch.ErrNotFound
	}
	if digest.FromBytes(data) != desc.Digest {
		return nil, &vouch.DigestMismatchError{Expected: desc.Digest.String(), Actual: digest.FromBytes(data).String()}
	}
	return data, nil
}

func (m memRepository) Referrers(context.Context, ocispec.Descriptor, string, func([]ocispec.Descriptor) error) error {
	return nil
}

// TestVerifyDirect calls Verify with hand-built requests: OCI layout scopes
// and the cases that never reach notation-go.
func TestVerifyDirect(t *testing.T) {
	ctx := context.Background()
	ca := newCA(t, "Root")
	key, chain := ca.leaf(t, "signer", leafOptions{})
	subjectDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("image"), Size: 5}
	sgn, err := signer.NewGenericSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	sig, _, err := sgn.Sign(ctx, subjectDesc, notationgo.SignerSignOptions{SignatureMediaType: notation.MediaTypeJWS})
	if err != nil {
		t.Fatal(err)
	}
	envelope := ocispec.Descriptor{MediaType: notation.MediaTypeJWS, Digest: digest.FromBytes(sig), Size: int64(len(sig))}
	repo := memRepository{envelope.Digest: sig}
	request := func(ref vouch.Reference, layers ...ocispec.Descriptor) *vouch.VerifyRequest {
		return &vouch.VerifyRequest{
			Reference:  ref,
			Subject:    subjectDesc,
			Artifact:   ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: notation.ArtifactType, Digest: digest.FromString("sig manifest")},
			Manifest:   ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, ArtifactType: notation.ArtifactType, Layers: layers, Subject: &subjectDesc},
			Repository: repo,
		}
	}
	layoutRef := vouch.Reference{Layout: "/tmp/layout", Digest: subjectDesc.Digest}
	registryRef := vouch.Reference{Registry: "registry.example", Repository: "team/app", Digest: subjectDesc.Digest}
	stores := notation.TrustStores{Inline: map[string][]string{"ca:acme": {ca.pem()}}}
	scoped := func(scope string) *trustpolicy.Document {
		return &trustpolicy.Document{Version: "1.0", TrustPolicies: []trustpolicy.TrustPolicy{{
			Name: "scoped", RegistryScopes: []string{scope}, TrustStores: []string{"ca:acme"}, TrustedIdentities: []string{"*"},
			SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: "strict"},
		}}}
	}
	mustNew := func(opts notation.Options) *notation.Verifier {
		t.Helper()
		opts.TrustStores = stores
		v, err := notation.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	wildcard := mustNew(notation.Options{TrustPolicy: scoped("*"), Name: "notary"})
	tooBig := envelope
	tooBig.Size = notation.MaxEnvelopeBytes + 1
	corrupted := envelope
	corrupted.Digest = digest.FromString("other bytes")
	repo[corrupted.Digest] = sig

	tests := []struct {
		name    string
		v       *notation.Verifier
		req     *vouch.VerifyRequest
		outcome vouch.Outcome
		reason  string
		err     error
	}{
		{"layout subject, wildcard scope", mustNew(notation.Options{TrustPolicy: scoped("*")}), request(layoutRef, envelope), vouch.Passed, "signed by", nil},
		{"layout subject, default layout scope", mustNew(notation.Options{TrustPolicy: scoped(notation.DefaultLayoutScope)}), request(layoutRef, envelope), vouch.Passed, "signed by", nil},
		{"layout subject, own layout scope", mustNew(notation.Options{TrustPolicy: scoped("local/ci"), LayoutScope: "local/ci"}), request(layoutRef, envelope), vouch.Passed, "signed by", nil},
		{"layout subject, other scope", mustNew(notation.Options{TrustPolicy: scoped("local/ci")}), request(layoutRef, envelope), vouch.Failed, "no trust policy applies to local/oci-layout", nil},
		{"registry subject, its scope", mustNew(notation.Options{TrustPolicy: scoped("registry.example/team/app")}), request(registryRef, envelope), vouch.Passed, "signed by", nil},
		{"registry subject, other scope", mustNew(notation.Options{TrustPolicy: scoped("registry.example/team/other")}), request(registryRef, envelope), vouch.Failed, "no trust policy applies to registry.example/team/app", nil},
		{"no layers", wildcard, request(registryRef), vouch.Failed, "has 0", nil},
		{"two layers", wildcard, request(registryRef, envelope, envelope), vouch.Failed, "has 2", nil},
		{"envelope too big", wildcard, request(registryRef, tooBig), vouch.Failed, "over the 33554432 that notation accepts", nil},
		{"unreadable envelope", wildcard, request(registryRef, corrupted), "", "", &vouch.DigestMismatchError{}},
		{"missing envelope", wildcard, request(registryRef, ocispec.Descriptor{MediaType: notation.MediaTypeCOSE, Digest: digest.FromString("x"), Size: 1}), "", "", vouch.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.v.Verify(ctx, tc.req)
			if tc.err != nil {
				var dm *vouch.DigestMismatchError
				if !errors.Is(err, tc.err) && !(errors.As(tc.err, &dm) && errors.As(err, &dm)) {
					t.Fatalf("err = %v, want %T", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.outcome || !strings.Contains(res.Reason, tc.reason) {
				t.Fatalf("got %s: %s; want %s containing %q", res.Outcome, res.Reason, tc.outcome, tc.reason)
			}
		})
	}

	t.Run("revocation disabled", func(t *testing.T) {
		// A certificate whose CRL cannot be fetched passes when revocation
		// checking is turned off, and errs otherwise.
		key, chain := ca.leaf(t, "unreachable crl", leafOptions{crlURL: "http://" + testbed.FreeAddr(t) + "/ca.crl"})
		sgn, err := signer.NewGenericSigner(key, chain)
		if err != nil {
			t.Fatal(err)
		}
		sig, _, err := sgn.Sign(ctx, subjectDesc, notationgo.SignerSignOptions{SignatureMediaType: notation.MediaTypeCOSE})
		if err != nil {
			t.Fatal(err)
		}
		env := ocispec.Descriptor{MediaType: notation.MediaTypeCOSE, Digest: digest.FromBytes(sig), Size: int64(len(sig))}
		repo[env.Digest] = sig
		for _, tc := range []struct {
			disable bool
			want    vouch.Outcome
		}{{false, vouch.Errored}, {true, vouch.Passed}} {
			opts := notation.Options{TrustPolicy: scoped("*"), Revocation: notation.Revocation{DisableUnsafe: tc.disable}}
			res, err := mustNew(opts).Verify(ctx, request(registryRef, env))
			if err != nil || res.Outcome != tc.want {
				t.Fatalf("DisableUnsafe=%v: %s %s (err %v), want %s", tc.disable, res.Outcome, res.Reason, err, tc.want)
			}
		}
	})
}
