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
