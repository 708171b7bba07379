package ratify_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vouch-project/vouch/migrate/ratify"
)

// FuzzConvert: Ratify resources come from users' clusters and files.
// Converting never panics, whatever the bytes.
func FuzzConvert(f *testing.F) {
	paths, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed fixtures: %v", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ratify.Convert([]ratify.Input{{Name: "in.yaml", Data: data}}, ratify.Options{})
	})
}
