package trust_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vouch-project/vouch/trust"
)

func TestFingerprinter(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write("ca.pem", "1")
	write("store/a.pem", "a")
	sum := func(paths ...string) string {
		t.Helper()
		fp := trust.NewFingerprinter()
		fp.Add("name", "value")
		for _, p := range paths {
			if err := fp.Path(p); err != nil {
				t.Fatal(err)
			}
		}
		return fp.Sum()
	}
	missing := filepath.Join(dir, "missing.pem")
	store := filepath.Join(dir, "store")
	cases := []struct {
		name   string
		change func()
		paths  []string
		same   bool
	}{
		{"file content", func() { write("ca.pem", "2") }, []string{file}, false},
		{"file created", func() { write("missing.pem", "now") }, []string{missing}, false},
		{"file in a folder", func() { write("store/a.pem", "b") }, []string{store}, false},
		{"new file in a folder", func() { write("store/sub/b.pem", "b") }, []string{store}, false},
		{"a file not hashed", func() { write("other.pem", "x") }, []string{file, store}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := sum(c.paths...)
			if again := sum(c.paths...); again != before {
				t.Fatal("the same input hashed differently")
			}
			c.change()
			if after := sum(c.paths...); (after == before) != c.same {
				t.Fatalf("sum changed: %v, want %v", after != before, !c.same)
			}
		})
	}
	a, b := trust.NewFingerprinter(), trust.NewFingerprinter()
	a.Add("ab", "c")
	b.Add("a", "bc")
	if a.Sum() == b.Sum() {
		t.Error("parts ran into each other")
	}
}
