package config_test

import (
	"testing"

	"github.com/vouch-project/vouch/config"
)

// A plugin's parameters are free-form: lists and objects at any depth are
// the plugin's business, not the strict decoder's.
func TestFreeFormParameters(t *testing.T) {
	doc := "version: v1\nverifiers: [{name: p, type: plugin, plugin: {path: /bin/true, artifactTypes: [application/spdx+json], parameters: {allowed: [MIT, Apache-2.0], nested: {list: [[1, 2], {a: b}]}}}}]\n"
	f, err := config.Parse([]byte(doc), "")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if got := f.Verifiers[0].Plugin.Parameters["allowed"]; len(got.([]any)) != 2 {
		t.Errorf("allowed = %#v", got)
	}
}
