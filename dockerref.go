package vouch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// This file parses registry references as github.com/distribution/reference
// v0.6.0's ParseNormalizedNamed does (Docker's grammar and normalisation),
// without regular expressions: that package compiles a dozen at init,
// about 0.6 ms and 400 KB on every vouch command. A differential fuzz test
// (FuzzDockerReference) holds the two to the same answers and errors.

// The errors of distribution/reference, with its messages.
var (
	errReferenceInvalidFormat = errors.New("invalid reference format")
	errNameContainsUppercase  = errors.New("repository name must be lowercase")
	errNameTooLong            = fmt.Errorf("repository name must not be more than %v characters", maxRepositoryBytes)
)

const (
	// maxRepositoryBytes bounds a repository path, as distribution does.
	maxRepositoryBytes = 255
	// maxTagBytes bounds a tag, as the distribution specification does.
	maxTagBytes = 128
)

// dockerReference is a parsed registry reference.
type dockerReference struct {
	domain, path, tag string
	digest            digest.Digest
}

// parseNormalizedNamed is distribution/reference's ParseNormalizedNamed:
// "alpine" is docker.io/library/alpine, "index.docker.io/x" is
// docker.io/library/x; the first path component is a host when it has a
// "." or ":", is "localhost", or has an uppercase letter.
func parseNormalizedNamed(s string) (dockerReference, error) {
	if isIdentifier(s) {
		return dockerReference{}, fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if i := strings.IndexByte(remainder, ':'); i > -1 {
		remote = remainder[:i]
	}
	if strings.ToLower(remote) != remote {
		return dockerReference{}, fmt.Errorf("invalid reference format: repository name (%s) must be lowercase", remote)
	}
	return parseDockerReference(domain + "/" + remainder)
}

// isIdentifier reports whether s is 64 lowercase hexadecimal digits (an
// image id, which Docker refuses as a name).
func isIdentifier(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

func splitDockerDomain(name string) (domain, remainder string) {
	maybeDomain, maybeRemainder, ok := strings.Cut(name, "/")
	if !ok {
		return DockerHub, "library/" + name
	}
	switch {
	case maybeDomain == "localhost":
		domain, remainder = maybeDomain, maybeRemainder
	case maybeDomain == "index.docker.io":
		domain, remainder = DockerHub, maybeRemainder
	case strings.ContainsAny(maybeDomain, ".:"):
		domain, remainder = maybeDomain, maybeRemainder
	case strings.ToLower(maybeDomain) != maybeDomain:
		domain, remainder = maybeDomain, maybeRemainder
	default:
		domain, remainder = DockerHub, name
	}
	if domain == DockerHub && !strings.ContainsRune(remainder, '/') {
		remainder = "library/" + remainder
	}
	return domain, remainder
}

// parseDockerReference is distribution/reference's Parse: NAME[:TAG][@DIGEST],
// NAME being [DOMAIN[:PORT]/]PATH.
func parseDockerReference(s string) (dockerReference, error) {
	ref, ok := matchReference(s)
	if !ok {
		if s == "" {
			return dockerReference{}, errors.New("repository name must have at least one component")
		}
		if _, ok := matchReference(strings.ToLower(s)); ok {
			return dockerReference{}, errNameContainsUppercase
		}
		return dockerReference{}, errReferenceInvalidFormat
	}
	if len(ref.path) > maxRepositoryBytes {
		return dockerReference{}, errNameTooLong
	}
	if ref.digest != "" {
		if err := ref.digest.Validate(); err != nil {
			return dockerReference{}, err
		}
	}
	return ref, nil
}

// matchReference matches s against the grammar alone.
func matchReference(s string) (dockerReference, bool) {
	var ref dockerReference
	name := s
	if i := strings.IndexByte(s, '@'); i >= 0 {
		if !isDigestPattern(s[i+1:]) {
			return ref, false
		}
		name, ref.digest = s[:i], digest.Digest(s[i+1:])
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		if !validTag(name[i+1:]) {
			return ref, false
		}
		name, ref.tag = name[:i], name[i+1:]
	}
	if domain, path, ok := strings.Cut(name, "/"); ok && isDomainAndPort(domain) && isRemoteName(path) {
		ref.domain, ref.path = domain, path
		return ref, true
	}
	if isRemoteName(name) {
		ref.path = name
		return ref, true
	}
	return ref, false
}

// validTag reports whether t is a tag: 1 to 128 letters, digits, '_', '.'
// or '-', not starting with '.' or '-'.
func validTag(t string) bool {
	if t == "" || len(t) > maxTagBytes || t[0] == '.' || t[0] == '-' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !isWord(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// isDigestPattern matches ALGORITHM:HEX as distribution's grammar writes
// it: [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}.
func isDigestPattern(d string) bool {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 32 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; !isDigit(c) && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	// Components separated by exactly one of - _ + ., each a letter then
	// letters or digits.
	start := true
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		switch {
		case isLetter(c):
			start = false
		case isDigit(c):
			if start {
				return false
			}
		case c == '-' || c == '_' || c == '+' || c == '.':
			if start {
				return false
			}
			start = true
		default:
			return false
		}
	}
	return alg != "" && !start
}

// isDomainAndPort matches HOST[:PORT], HOST a DNS-like name of components
// ([a-zA-Z0-9], or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]) joined by dots, or
// an IPv6 address in brackets.
func isDomainAndPort(d string) bool {
	host, port := d, ""
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 {
			return false
		}
		host, port = d[:end+1], d[end+1:]
		inner := host[1 : len(host)-1]
		if inner == "" {
			return false
		}
		for i := 0; i < len(inner); i++ {
			if c := inner[i]; !isDigit(c) && c != ':' && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
				return false
			}
		}
	} else {
		if i := strings.IndexByte(d, ':'); i >= 0 {
			host, port = d[:i], d[i:]
		}
		for _, comp := range strings.Split(host, ".") {
			if !isDomainComponent(comp) {
				return false
			}
		}
	}
	if port == "" {
		return true
	}
	if port[0] != ':' || len(port) < 2 {
		return false
	}
	for i := 1; i < len(port); i++ {
		if !isDigit(port[i]) {
			return false
		}
	}
	return true
}

func isDomainComponent(c string) bool {
	if c == "" || c[0] == '-' || c[len(c)-1] == '-' {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isLetter(c[i]) && !isDigit(c[i]) && c[i] != '-' {
			return false
		}
	}
	return true
}

// isRemoteName matches a repository path: components joined by '/', each
// runs of [a-z0-9] separated by '.', '_', '__' or one or more '-'.
func isRemoteName(p string) bool {
	for _, comp := range strings.Split(p, "/") {
		if !isPathComponent(comp) {
			return false
		}
	}
	return true
}

func isPathComponent(c string) bool {
	if c == "" || !isLowerAlnum(c[0]) || !isLowerAlnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); {
		if isLowerAlnum(c[i]) {
			i++
			continue
		}
		j := i
		for j < len(c) && !isLowerAlnum(c[j]) {
			j++
		}
		switch sep := c[i:j]; {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isLetter(c byte) bool     { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || isDigit(c) }
func isWord(c byte) bool       { return isLetter(c) || isDigit(c) || c == '_' }
