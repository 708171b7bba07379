package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedLayoutIsCurrent regenerates the sample layout and compares
// it, file by file, with the copy under examples/layout.
func TestCommittedLayoutIsCurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	if err := generate(context.Background(), dir); err != nil {
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
		if err != nil || !bytes.Equal(got, want) {
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
