package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestCommittedLayoutIsCurrent regenerates the sample layout without
// signatures (they differ on every run) and checks that every file it
// writes is in examples/layout byte for byte, and that index.json lists
// every manifest it lists. That the committed signatures verify is shown by
// cmd/vouch's quick-start test.
func TestCommittedLayoutIsCurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	if err := generate(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	committed := filepath.Join("..", "layout")
	count := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		want, _ := os.ReadFile(path)
		got, err := os.ReadFile(filepath.Join(committed, rel))
		if rel == ocispec.ImageIndexFile {
			checkIndexSubset(t, want, got)
		} else if err != nil || !bytes.Equal(got, want) {
			t.Errorf("examples/layout/%s is stale or missing: run go run ./examples/gen", rel)
		}
		count++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count < 10 {
		t.Fatalf("generated only %d files", count)
	}
}

func checkIndexSubset(t *testing.T, want, got []byte) {
	t.Helper()
	var w, g ocispec.Index
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("examples/layout/index.json: %v", err)
	}
	have := map[string]bool{}
	for _, d := range g.Manifests {
		have[d.Digest.String()+d.Annotations[ocispec.AnnotationRefName]] = true
	}
	for _, d := range w.Manifests {
		if !have[d.Digest.String()+d.Annotations[ocispec.AnnotationRefName]] {
			t.Errorf("examples/layout/index.json lacks %s %s: run go run ./examples/gen", d.Digest, d.Annotations[ocispec.AnnotationRefName])
		}
	}
}
