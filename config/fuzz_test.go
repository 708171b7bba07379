package config_test

import (
	"os"
	"testing"

	"github.com/vouch-project/vouch/config"
)

// FuzzParse: config files come from users and ConfigMaps. Parsing never
// panics, whatever the bytes.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../examples/config/vouch.yaml", "../examples/config/quickstart.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"version":"v1","limits":{"maxDepth":3}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = config.Parse(data, ".")
	})
}

// FuzzParseResources: ClusterVouchConfig and VouchConfig manifests come
// from the cluster and from `vouch config validate`. Parsing never panics,
// whatever the bytes.
func FuzzParseResources(f *testing.F) {
	for _, p := range []string{"../examples/kubernetes/cluster.yaml", "../examples/kubernetes/tenant.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: config.vouch.dev/v1alpha1\nkind: VouchConfig\nmetadata: {name: t, namespace: a}\nspec: {}\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = config.ParseResources(data)
	})
}
