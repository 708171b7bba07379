package audit_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/vouch-project/vouch/audit"
)

// FuzzReadManifests: manifests come from users and from whatever a CI
// step pipes in. Reading never panics, and whatever fails is a
// ManifestError that names the input.
func FuzzReadManifests(f *testing.F) {
	for _, p := range []string{"testdata/workloads.yaml", "testdata/list.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: a}], 1: x}\n"))
	f.Add([]byte("[{\"apiVersion\":\"v1\",\"kind\":\"PodList\",\"items\":null}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := audit.ReadManifests("in", bytes.NewReader(data), audit.ManifestOptions{MaxObjects: 100})
		var me *audit.ManifestError
		switch {
		case err != nil && !errors.As(err, &me):
			t.Fatalf("error %v is not a ManifestError", err)
		case err == nil && m.Objects > 100:
			t.Fatalf("%d objects read, bound 100", m.Objects)
		}
	})
}
