package ocilayout_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/store/ocilayout"
)

// copyLayout copies the sample layout into a temporary folder.
func copyLayout(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "layout")
	if err := os.CopyFS(dst, os.DirFS("../../examples/layout")); err != nil {
		t.Fatal(err)
	}
	return dst
}

func open(t *testing.T, dir string, limits vouch.Limits) (vouch.Repository, error) {
	t.Helper()
	ref, err := vouch.ParseReference("oci-layout:" + dir + ":demo")
	if err != nil {
		t.Fatal(err)
	}
	return ocilayout.New(limits).Repository(context.Background(), ref)
}

func TestLayoutReads(t *testing.T) {
	ctx := context.Background()
	repo, err := open(t, copyLayout(t), vouch.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := repo.Resolve(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	var referrers int
	if err := repo.Referrers(ctx, desc, "", func(page []ocispec.Descriptor) error { referrers += len(page); return nil }); err != nil {
		t.Fatal(err)
	}
	if referrers != 3 {
		t.Fatalf("%d referrers, want 3 (SBOM, report, signature)", referrers)
	}
	if _, err := repo.Resolve(ctx, "missing"); !errors.Is(err, vouch.ErrNotFound) {
		t.Fatalf("missing tag: %v", err)
	}
}

func TestLayoutCorruptBlob(t *testing.T) {
	ctx := context.Background()
	dir := copyLayout(t)
	repo, err := open(t, dir, vouch.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	desc, _ := repo.Resolve(ctx, "demo")
	manifest, err := repo.Fetch(ctx, desc)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite the config blob with other bytes of the same length.
	configDigest := strings.SplitN(strings.SplitN(string(manifest), `"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`, 2)[1], `"`, 2)[0]
	path := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(configDigest, "sha256:"))
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Repeat("x", len(data))), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = repo.Fetch(ctx, ocispec.Descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digest.Digest(configDigest), Size: int64(len(data))})
	var dm *vouch.DigestMismatchError
	if !errors.As(err, &dm) {
		t.Fatalf("corrupt blob: %v, want a digest mismatch", err)
	}
}

func TestLayoutLimitsAndErrors(t *testing.T) {
	dir := copyLayout(t)
	if _, err := open(t, dir, vouch.Limits{MaxManifestBytes: 100}); !errors.Is(err, vouch.ErrLimitExceeded) || !strings.Contains(err.Error(), "max-manifest-bytes") {
		t.Fatalf("oversized index.json: %v", err)
	}
	if _, err := open(t, t.TempDir(), vouch.Limits{}); err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Fatalf("empty folder: %v", err)
	}
	repo, err := open(t, dir, vouch.Limits{MaxBlobBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	_, err = repo.Fetch(context.Background(), ocispec.Descriptor{MediaType: "application/spdx+json", Digest: digest.Digest("sha256:" + strings.Repeat("0", 64)), Size: 11})
	if !errors.Is(err, vouch.ErrLimitExceeded) {
		t.Fatalf("oversized blob: %v", err)
	}
}
