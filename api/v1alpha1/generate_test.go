package v1alpha1_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/internal/testbed"
)

// TestGeneratedUpToDate runs hack/gen-crds.sh on a copy of the module and
// fails when the CRDs in deploy/crds or a zz_generated.deepcopy.go differ
// from what it generates: run hack/gen-crds.sh and commit.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen")
	}
	controllerGen := testbed.Bin(t, "controller-gen")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	// The copy: go.mod, go.sum, the Go sources and the scripts; not the
	// rest (testdata, docs).
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if name := d.Name(); rel != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(work, rel), 0o755)
		}
		if !d.Type().IsRegular() || !(strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, ".sh") || rel == "go.mod" || rel == "go.sum" || strings.HasPrefix(rel, "deploy/crds/")) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(work, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(work, "hack/gen-crds.sh"))
	cmd.Env = append(os.Environ(), "CONTROLLER_GEN="+controllerGen)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/gen-crds.sh: %v\n%s", err, out)
	}
	var generated []string
	for _, pattern := range []string{"deploy/crds/*.yaml", "*/zz_generated.deepcopy.go", "*/*/zz_generated.deepcopy.go"} {
		for _, dir := range []string{root, work} {
			m, err := filepath.Glob(filepath.Join(dir, pattern))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range m {
				rel, _ := filepath.Rel(dir, p)
				generated = append(generated, rel)
			}
		}
	}
	if len(generated) == 0 {
		t.Fatal("nothing generated")
	}
	for _, rel := range generated {
		want, errW := os.ReadFile(filepath.Join(work, rel))
		got, errG := os.ReadFile(filepath.Join(root, rel))
		switch {
		case errW != nil:
			t.Errorf("%s is committed but no longer generated: remove it (hack/gen-crds.sh)", rel)
		case errG != nil:
			t.Errorf("%s is generated but not committed: run hack/gen-crds.sh", rel)
		case !bytes.Equal(got, want):
			t.Errorf("%s is stale: run hack/gen-crds.sh and commit", rel)
		}
	}
}
