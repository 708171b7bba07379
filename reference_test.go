package vouch_test

import (
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
)

func TestParseReference(t *testing.T) {
	const dig = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	tests := []struct {
		in, want string
		layout   string
	}{
		{in: "alpine", want: "docker.io/library/alpine:latest"},
		{in: "alpine:3.20", want: "docker.io/library/alpine:3.20"},
		{in: "user/app", want: "docker.io/user/app:latest"},
		{in: "docker.io/alpine", want: "docker.io/library/alpine:latest"},
		{in: "ghcr.io/org/app:v1", want: "ghcr.io/org/app:v1"},
		{in: "localhost/app", want: "localhost/app:latest"},
		{in: "127.0.0.1:5000/a/b/c:v1", want: "127.0.0.1:5000/a/b/c:v1"},
		{in: "127.0.0.1:5000/app@" + dig, want: "127.0.0.1:5000/app@" + dig},
		{in: "127.0.0.1:5000/app:v1@" + dig, want: "127.0.0.1:5000/app:v1@" + dig},
		{in: "index.docker.io/library/alpine", want: "docker.io/library/alpine:latest"},
		{in: "index.docker.io/alpine:3.20", want: "docker.io/library/alpine:3.20"},
		{in: "INDEX.DOCKER.IO/user/app", want: "docker.io/user/app:latest"},
		{in: "GHCR.io/org/app:v1", want: "ghcr.io/org/app:v1"},
		{in: "LOCALHOST:5000/app", want: "localhost:5000/app:latest"},
		{in: "[::1]:5000/app:v1", want: "[::1]:5000/app:v1"},
		{in: "169.254.169.254/x:y", want: "169.254.169.254/x:y"},
		{in: "kubernetes.default.svc/x", want: "kubernetes.default.svc/x:latest"},
		{in: "oci-layout:examples/layout:demo", want: "oci-layout:examples/layout:demo", layout: "examples/layout"},
		{in: "oci-layout:/tmp/x:y/layout@" + dig, want: "oci-layout:/tmp/x:y/layout@" + dig, layout: "/tmp/x:y/layout"},
		{in: "oci-layout:C:/dir:v1", want: "oci-layout:C:/dir:v1", layout: "C:/dir"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ref, err := vouch.ParseReference(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := ref.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if ref.Layout != tt.layout {
				t.Errorf("Layout = %q, want %q", ref.Layout, tt.layout)
			}
			again, err := vouch.ParseReference(ref.String())
			if err != nil || again != ref {
				t.Errorf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func TestParseReferenceErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "invalid reference: empty"},
		{"UPPER/Case:v1", `repository name (Case) must be lowercase`},
		{"host:5000/app@sha256:123", "bad digest"},
		{"host:5000/app@md5:0123456789abcdef0123456789abcdef", "bad digest"},
		{"host:5000/app:bad tag", "white space"},
		{"host:5000/app:" + strings.Repeat("a", 129), "bad tag"},
		{"host:5000/app:-v1", `bad tag "-v1"`},
		{"host:5000/app:", `bad tag ""`},
		{"host:5000/a//b", `bad repository name "host:5000/a//b"`},
		{"host:5000/-app", "bad repository name"},
		{"ghcr.io/" + strings.Repeat("a", 256), "must not be more than 255 characters"},
		{"ghcr.io/" + strings.Repeat("a/", 600), "longer than 1024 bytes"},
		{strings.Repeat("0", 64), "64-byte hexadecimal"},
		{"oci-layout:", "no layout path"},
		{"oci-layout:dir", "needs :TAG or @DIGEST"},
		{"oci-layout:dir:bad/../tag", "needs :TAG or @DIGEST"},
		{"host:5000/Bad_Repo", "must be lowercase"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := vouch.ParseReference(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "invalid reference") {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
