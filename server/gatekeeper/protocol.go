package gatekeeper

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
)

// API versions and kinds of the external data protocol.
const (
	// APIVersion is the current version, which responses use unless the
	// request used APIVersionAlpha.
	APIVersion = "externaldata.gatekeeper.sh/v1beta1"
	// APIVersionAlpha is the older version, still accepted.
	APIVersionAlpha = "externaldata.gatekeeper.sh/v1alpha1"
	// KindRequest and KindResponse are the kinds of the two messages.
	KindRequest  = "ProviderRequest"
	KindResponse = "ProviderResponse"
)

// ProviderRequest is what Gatekeeper sends.
type ProviderRequest struct {
	// APIVersion is APIVersion or APIVersionAlpha.
	APIVersion string `json:"apiVersion"`
	// Kind is KindRequest.
	Kind string `json:"kind"`
	// Request holds the keys.
	Request Request `json:"request"`
}

// Request lists the keys to answer: image references, each optionally
// prefixed with "[namespace]".
type Request struct {
	// Keys are the images to answer for, repeats allowed.
	Keys []string `json:"keys"`
}

// ProviderResponse is what the provider answers.
type ProviderResponse struct {
	// APIVersion echoes the request's.
	APIVersion string `json:"apiVersion"`
	// Kind is KindResponse.
	Kind string `json:"kind"`
	// Response holds the items.
	Response Response `json:"response"`
}

// Response holds one item per distinct key, or a system error.
type Response struct {
	// Idempotent is true: the same keys get the same answers (until the
	// registry or the policy changes). Gatekeeper requires it for mutation.
	Idempotent bool `json:"idempotent"`
	// Items answer the keys, in the order they were first asked.
	Items []Item `json:"items"`
	// SystemError says why the whole request failed. Optional.
	SystemError string `json:"systemError,omitempty"`
}

// Item answers one key with a value, or an error when vouch could not
// answer it.
type Item struct {
	// Key is the key answered, as the request spelled it.
	Key string `json:"key"`
	// Value is the answer: a verify value (see the package documentation)
	// or a pinned image. Optional.
	Value any `json:"value,omitempty"`
	// Error says why vouch could not answer the key. Optional.
	Error string `json:"error,omitempty"`
}

// SplitKey splits a key into its namespace and image: "[ns]image" names
// the namespace ns, a key without the prefix names none.
func SplitKey(key string) (namespace, image string, err error) {
	if !strings.HasPrefix(key, "[") {
		return "", key, nil
	}
	end := strings.IndexByte(key, ']')
	if end < 0 {
		return "", "", fmt.Errorf("key %q: a namespace prefix needs a closing ']'", key)
	}
	namespace, image = key[1:end], key[end+1:]
	if !validNamespace(namespace) {
		return "", "", fmt.Errorf("key %q: %q is not a namespace name", key, namespace)
	}
	return namespace, image, nil
}

// validNamespace checks a Kubernetes namespace name: an RFC 1123 label.
func validNamespace(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// decode reads a ProviderRequest from body into *buf (kept for the next
// request), returning the HTTP status for the error when it is not one.
func decode(body io.Reader, maxKeys int, buf *[]byte) (*ProviderRequest, int, error) {
	data, err := readAll(body, (*buf)[:0])
	*buf = data
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the limit of %d bytes", tooBig.Limit)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("malformed ProviderRequest: %v", err)
	}
	req, err := ParseRequest(data, maxKeys)
	if err != nil {
		var tooMany *tooManyKeysError
		if errors.As(err, &tooMany) {
			return nil, http.StatusRequestEntityTooLarge, err
		}
		return nil, http.StatusBadRequest, err
	}
	return req, 0, nil
}

// readAll is io.ReadAll appending to b.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// tooManyKeysError is the error of a request with more keys than allowed.
type tooManyKeysError struct{ n, max int }

func (e *tooManyKeysError) Error() string {
	return fmt.Sprintf("%d keys is over the limit of %d per request", e.n, e.max)
}

// ParseRequest parses the body of a ProviderRequest (one JSON object, as
// encoding/json decodes it) and checks its apiVersion, its kind and that it
// has at most maxKeys keys.
func ParseRequest(data []byte, maxKeys int) (*ProviderRequest, error) {
	req, ok := parseCanonical(data)
	if !ok {
		req = new(ProviderRequest)
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(req); err != nil {
			return nil, fmt.Errorf("malformed ProviderRequest: %v", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, errors.New("malformed ProviderRequest: data after the JSON object")
		}
	}
	switch req.APIVersion {
	case APIVersion, APIVersionAlpha:
	default:
		return nil, fmt.Errorf("apiVersion %q is not %s or %s", req.APIVersion, APIVersion, APIVersionAlpha)
	}
	if req.Kind != KindRequest {
		return nil, fmt.Errorf("kind %q is not %s", req.Kind, KindRequest)
	}
	if n := len(req.Request.Keys); n > maxKeys {
		return nil, &tooManyKeysError{n, maxKeys}
	}
	return req, nil
}

// parseCanonical parses, without reflection, a ProviderRequest of the shape
// Gatekeeper sends: an object whose members are apiVersion and kind
// (strings) and request (an object whose one member is keys, an array of
// strings), each at most once, in any order, with no escapes and no bytes
// beyond ASCII in its strings. It returns false for anything else, which
// encoding/json then decodes: where it returns true, the request is the one
// json.Unmarshal gives (FuzzParseRequest checks it). Decoding by
// reflection was a fifth of the server's CPU on cached requests.
func parseCanonical(data []byte) (*ProviderRequest, bool) {
	// The strings are cut from one copy of the body: one allocation.
	s := scanner{b: data, s: string(data)}
	req := new(ProviderRequest)
	var seenVersion, seenKind, seenRequest bool
	if !s.next('{') {
		return nil, false
	}
	for first := true; ; first = false {
		if first && s.next('}') {
			break
		}
		name, ok := s.str()
		if !ok || !s.next(':') {
			return nil, false
		}
		switch name {
		case "apiVersion":
			v, ok := s.str()
			if !ok || seenVersion {
				return nil, false
			}
			req.APIVersion, seenVersion = intern(v, APIVersion, APIVersionAlpha), true
		case "kind":
			v, ok := s.str()
			if !ok || seenKind {
				return nil, false
			}
			req.Kind, seenKind = intern(v, KindRequest), true
		case "request":
			if seenRequest || !s.next('{') {
				return nil, false
			}
			seenRequest = true
			if name, ok := s.str(); !ok || name != "keys" || !s.next(':') || !s.next('[') {
				return nil, false
			}
			req.Request.Keys = make([]string, 0, 16)
			if !s.next(']') {
				for {
					k, ok := s.str()
					if !ok {
						return nil, false
					}
					req.Request.Keys = append(req.Request.Keys, k)
					if s.next(']') {
						break
					}
					if !s.next(',') {
						return nil, false
					}
				}
			}
			if !s.next('}') {
				return nil, false
			}
		default:
			return nil, false
		}
		if s.next('}') {
			break
		}
		if !s.next(',') {
			return nil, false
		}
	}
	s.space()
	return req, s.i == len(s.b)
}

// intern returns s, or the one of known equal to it (a constant, rather
// than a piece of the body).
func intern(s string, known ...string) string {
	for _, k := range known {
		if s == k {
			return k
		}
	}
	return s
}

// scanner reads the JSON tokens parseCanonical accepts.
type scanner struct {
	b []byte
	s string // b as a string
	i int
}

// space skips white space.
func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and then c, reporting whether c was there.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str skips white space and reads a string without escapes, control
// characters or bytes beyond ASCII, and returns its contents.
func (s *scanner) str() (string, bool) {
	if !s.next('"') {
		return "", false
	}
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := s.s[s.i:j]
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

// MaxFailures bounds the failed nodes a verify value lists; its
// failuresOmitted counts the others.
const MaxFailures = 10

// MaxExplanations bounds the explanations a verify value lists; its
// explanationsOmitted counts the others. Each lists at most
// vouch.MaxExplained findings.
const MaxExplanations = 5

// MaxExplanationText bounds each text of an explanation in a verify value
// (reason, wanted, and each finding's reason and signer), in bytes.
const MaxExplanationText = 512

// Failure is a node of a report's graph that failed a check or could not
// be checked.
type Failure struct {
	// Digest is the node's manifest digest.
	Digest digest.Digest `json:"digest"`
	// ArtifactType is the node's artifact type; empty for images.
	ArtifactType string `json:"artifactType,omitempty"`
	// Outcome is failed or error.
	Outcome vouch.Outcome `json:"outcome"`
	// Reason is the first failing verifier's reason, prefixed with its
	// name.
	Reason string `json:"reason"`
}
