package vouch

import (
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
//   - a registry reference with Docker's normalisation: "alpine" is
//     "docker.io/library/alpine:latest", "user/app" is
//     "docker.io/user/app:latest", and "host:5000/app@sha256:…" names a digest;
//   - "oci-layout:PATH:TAG" or "oci-layout:PATH@DIGEST" for an OCI image layout.
func ParseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("invalid reference: empty")
	}
	if strings.HasPrefix(s, LayoutPrefix) {
		return parseLayoutReference(s)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return Reference{}, fmt.Errorf("invalid reference %q: contains white space", s)
	}
	host, rest := DockerHub, s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		first := s[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first {
			host, rest = first, s[i+1:]
		}
	}
	// Split off a digest, then a tag (the last ':' after the last '/').
	var ref Reference
	name := rest
	if i := strings.IndexByte(name, '@'); i >= 0 {
		d, err := digest.Parse(name[i+1:])
		if err != nil {
			return Reference{}, fmt.Errorf("invalid reference %q: bad digest: %v", s, err)
		}
		ref.Digest, name = d, name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		ref.Tag, name = name[i+1:], name[:i]
	}
	if host == DockerHub && !strings.Contains(name, "/") {
		name = "library/" + name
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	ref.Registry, ref.Repository = host, name
	// Let oras-go's grammar (the distribution spec's) judge every part.
	check := registry.Reference{Registry: host, Repository: name, Reference: ref.Tag}
	if ref.Digest != "" {
		check.Reference = ref.Digest.String()
	}
	if err := check.Validate(); err != nil {
		return Reference{}, fmt.Errorf("invalid reference %q: %w", s, err)
	}
	if ref.Tag != "" {
		check.Reference = ref.Tag
		if err := check.ValidateReferenceAsTag(); err != nil {
			return Reference{}, fmt.Errorf("invalid reference %q: %w", s, err)
		}
	}
	return ref, nil
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
