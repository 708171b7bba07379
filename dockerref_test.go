package vouch

import (
	"testing"

	"github.com/distribution/reference"
)

// dockerRefSeeds are references that exercise each part of the grammar.
var dockerRefSeeds = []string{
	"alpine", "alpine:3.20", "user/app", "docker.io/alpine", "index.docker.io/library/alpine",
	"INDEX.DOCKER.IO/x", "UPPER/x", "UPPER/Case:v1", "ghcr.io/org/app:v1", "GHCR.io/A", "localhost/app",
	"localhost:5000", "localhost:5000/app", "LOCALHOST:5000/app", "127.0.0.1:5000/a/b/c:v1",
	"[::1]:5000/app:v1", "[::1]/app", "[]/app", "[::1]]/app", "[fe80::1%25eth0]/x",
	"a_b.c/x", "a__b/c", "a___b/c", "a-b--c/d", "a._b/c", "a.-b/c", "-a/b", "a-/b", "a/b/", "/a", "a//b",
	"a:b:c", "a/b:c:d", "a:", "a:.x", "a:-x", "a:_x", "x:" + string(make([]byte, 130)),
	"app@sha256:0000000000000000000000000000000000000000000000000000000000000001",
	"app:v1@sha256:0000000000000000000000000000000000000000000000000000000000000001",
	"app@sha256:00000000000000000000000000000000000000000000000000000000000000", "app@sha256:ABCDEF0123456789ABCDEF0123456789",
	"app@sha3+x.y_z-w:0123456789abcdef0123456789abcdef", "app@1sha:0123456789abcdef0123456789abcdef", "app@a@b",
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "host:port/x", "host:5000:1/x",
	"ex-ample.com/x", "-example.com/x", "example-.com/x", "a..b/x", "xn--80ak6aa92e.com/x",
	"docker.io/library/a.b_c__d---e", "İ/x", "x/İ", "a/B", "a:B", "A:b",
}

// FuzzDockerReference holds parseNormalizedNamed to the answers and error
// messages of github.com/distribution/reference's ParseNormalizedNamed,
// whose grammar it reimplements without regular expressions.
func FuzzDockerReference(f *testing.F) {
	for _, s := range dockerRefSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkDockerReference(t, s)
	})
}

func TestDockerReferenceMatchesDistribution(t *testing.T) {
	long := "a"
	for len(long) < 300 {
		long += "/a"
	}
	for _, s := range append(dockerRefSeeds, long, "docker.io/"+long[:254], "docker.io/"+long[:255], "docker.io/"+long[:256]) {
		checkDockerReference(t, s)
	}
}

func checkDockerReference(t *testing.T, s string) {
	t.Helper()
	got, gotErr := parseNormalizedNamed(s)
	named, wantErr := reference.ParseNormalizedNamed(s)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%q: error %v, distribution/reference: %v", s, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	want := dockerReference{domain: reference.Domain(named), path: reference.Path(named)}
	if tagged, ok := named.(reference.Tagged); ok {
		want.tag = tagged.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		want.digest = d.Digest()
	}
	if got != want {
		t.Fatalf("%q: %+v, distribution/reference: %+v", s, got, want)
	}
	if tag := s[len(s)-min(len(s), 10):]; validTag(tag) != (reference.TagRegexp.FindString(tag) == tag) {
		t.Fatalf("validTag(%q) disagrees with reference.TagRegexp", tag)
	}
}
