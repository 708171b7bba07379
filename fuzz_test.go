package vouch_test

import (
	"testing"

	"github.com/vouch-project/vouch"
)

// FuzzParseReference: references come from users, admission requests and
// Gatekeeper keys. Parsing never panics, and what parses formats to a
// string that parses to the same reference.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"alpine", "ghcr.io/org/app:v1", "127.0.0.1:5000/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000001",
		"oci-layout:/tmp/x:y/layout:tag", "localhost/app", "UPPER/x", "a@b", "oci-layout::",
		"index.docker.io/library/alpine", "INDEX.DOCKER.IO/x", "[::1]:5000/app:v1", "GHCR.io/A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := vouch.ParseReference(s)
		if err != nil {
			return
		}
		again, err := vouch.ParseReference(ref.String())
		if err != nil || again != ref {
			t.Fatalf("%q → %q → %+v, %v", s, ref.String(), again, err)
		}
	})
}
