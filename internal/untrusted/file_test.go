package untrusted_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/internal/untrusted"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max  int64
		want string
	}{{5, ""}, {6, ""}, {4, "is larger than 4 bytes"}} {
		data, err := untrusted.ReadFile(path, tc.max)
		switch {
		case tc.want == "" && (err != nil || string(data) != "12345"):
			t.Errorf("max %d: %q, %v", tc.max, data, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path)):
			t.Errorf("max %d: error %v, want one naming %s and %q", tc.max, err, path, tc.want)
		}
	}
	if _, err := untrusted.ReadFile(filepath.Join(dir, "missing"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}
