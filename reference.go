package vouch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"
)

// LayoutPrefix starts a reference to an OCI image layout on disk:
// "oci-layout:PATH:TAG" or "oci-layout:PATH@DIGEST".
const LayoutPrefix = "oci-layout:"

// DockerHub is the registry that references without a host name point at,
// as in Docker: "alpine" is "docker.io/library/alpine:latest".
const DockerHub = "docker.io"

// MaxReferenceBytes bounds the length of a registry reference. The longest
// valid one (a 253-byte host, a 255-byte repository path, a 128-byte tag and
// a SHA-512 digest) is well below it.
const MaxReferenceBytes = 1024

// Reference names a subject: an artifact in a registry repository, or in an
// OCI image layout on disk. Parse it once, at the edge, with ParseReference.
type Reference struct {
	// Registry is the registry host with an optional port, such as
	// "docker.io" or "127.0.0.1:5000". Empty for a layout reference.
	Registry string
	// Repository is the repository path within the registry, such as
	// "library/alpine". Empty for a layout reference.
	Repository string
	// Layout is the directory of an OCI image layout. Set only for
	// "oci-layout:" references.
	Layout string
	// Tag is the tag, if the reference names one.
	Tag string
	// Digest is the digest, if the reference names one. When both are set
	// the digest wins and the tag is informational, as in Docker.
	Digest digest.Digest
}

// ParseReference parses a subject reference:
//
//   - a registry reference, parsed and normalised as Docker, containerd
//     and Kubernetes do (github.com/distribution/reference's grammar, in
//     dockerref.go): "alpine" is
//     "docker.io/library/alpine:latest", "user/app" is
//     "docker.io/user/app:latest", "index.docker.io/user/app" is
//     "docker.io/user/app:latest", and "host:5000/app@sha256:…" names a
//     digest. A registry host is lowercased ("GHCR.io" is "ghcr.io");
//   - "oci-layout:PATH:TAG" or "oci-layout:PATH@DIGEST" for an OCI image
//     layout, vouch's own form.
//
// Errors start "invalid reference" and say which part is wrong.
func ParseReference(s string) (Reference, error) {
	switch {
	case s == "":
		return Reference{}, fmt.Errorf("invalid reference: empty")
	case strings.HasPrefix(s, LayoutPrefix):
		return parseLayoutReference(s)
	case len(s) > MaxReferenceBytes:
		return Reference{}, fmt.Errorf("invalid reference %q…: longer than %d bytes", s[:64], MaxReferenceBytes)
	case strings.ContainsAny(s, " \t\r\n"):
		return Reference{}, fmt.Errorf("invalid reference %q: contains white space", s)
	}
	if _, d, ok := strings.Cut(s, "@"); ok {
		if _, err := digest.Parse(d); err != nil {
			return Reference{}, fmt.Errorf("invalid reference %q: bad digest: %v", s, err)
		}
	}
	named, err := parseNormalizedNamed(s)
	if err != nil {
		return Reference{}, fmt.Errorf("invalid reference %q: %s", s, explain(s, err))
	}
	if host := named.domain; host != strings.ToLower(host) && isHost(strings.ToLower(host)) {
		// Host names are not case-sensitive: normalise, so that policy
		// scopes see one name ("INDEX.DOCKER.IO/x" is "docker.io/x").
		return ParseReference(strings.ToLower(host) + s[len(host):])
	}
	ref := Reference{Registry: named.domain, Repository: named.path, Tag: named.tag, Digest: named.digest}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	return ref, nil
}

// isHost reports whether Docker's normalisation reads a first path
// component, all lowercase, as a registry host rather than a repository
// path component.
func isHost(first string) bool {
	return strings.ContainsAny(first, ".:") || first == "localhost"
}

// explain turns the reference library's terse errors into what is wrong
// in s.
func explain(s string, err error) string {
	if !errors.Is(err, errReferenceInvalidFormat) {
		return err.Error()
	}
	name, _, _ := strings.Cut(s, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		tag := name[i+1:]
		if !validTag(tag) {
			return fmt.Sprintf("bad tag %q: a tag is 1 to 128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'", tag)
		}
		name = name[:i]
	}
	return fmt.Sprintf("bad repository name %q: a name is [HOST[:PORT]/]PATH, each path component lowercase letters and digits joined by '.', '_', '__' or '-'", name)
}

func parseLayoutReference(s string) (Reference, error) {
	rest := strings.TrimPrefix(s, LayoutPrefix)
	var ref Reference
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		d, err := digest.Parse(rest[i+1:])
		if err != nil {
			return Reference{}, fmt.Errorf("invalid reference %q: bad digest: %v", s, err)
		}
		ref.Digest, rest = d, rest[:i]
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.ContainsRune(rest[i+1:], '/') {
		ref.Tag, rest = rest[i+1:], rest[:i]
		check := registry.Reference{Reference: ref.Tag}
		if err := check.ValidateReferenceAsTag(); err != nil {
			return Reference{}, fmt.Errorf("invalid reference %q: %w", s, err)
		}
	}
	if rest == "" {
		return Reference{}, fmt.Errorf("invalid reference %q: no layout path", s)
	}
	if ref.Tag == "" && ref.Digest == "" {
		return Reference{}, fmt.Errorf("invalid reference %q: an OCI layout reference needs :TAG or @DIGEST", s)
	}
	ref.Layout = rest
	return ref, nil
}

// IsLayout reports whether r names an artifact in an OCI image layout.
func (r Reference) IsLayout() bool { return r.Layout != "" }

// Name is the reference without tag or digest: "registry/repository", or
// "oci-layout:PATH".
func (r Reference) Name() string {
	if r.IsLayout() {
		return LayoutPrefix + r.Layout
	}
	return r.Registry + "/" + r.Repository
}

// Version is the digest when known, else the tag: what to resolve.
func (r Reference) Version() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// WithDigest returns r pinned to d, keeping the tag for display.
func (r Reference) WithDigest(d digest.Digest) Reference {
	r.Digest = d
	return r
}

// String formats r in the form ParseReference reads, fully normalised.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}
