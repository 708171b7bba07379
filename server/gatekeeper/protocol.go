package gatekeeper

import (
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

// decode reads a ProviderRequest, returning the HTTP status for the error
// when it is not one.
func decode(body io.Reader, maxKeys int) (*ProviderRequest, int, error) {
	var req ProviderRequest
	dec := json.NewDecoder(body)
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the limit of %d bytes", tooBig.Limit)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("malformed ProviderRequest: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the limit of %d bytes", tooBig.Limit)
		}
		return nil, http.StatusBadRequest, errors.New("malformed ProviderRequest: data after the JSON object")
	}
	switch req.APIVersion {
	case APIVersion, APIVersionAlpha:
	default:
		return nil, http.StatusBadRequest, fmt.Errorf("apiVersion %q is not %s or %s", req.APIVersion, APIVersion, APIVersionAlpha)
	}
	if req.Kind != KindRequest {
		return nil, http.StatusBadRequest, fmt.Errorf("kind %q is not %s", req.Kind, KindRequest)
	}
	if n := len(req.Request.Keys); n > maxKeys {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("%d keys is over the limit of %d per request", n, maxKeys)
	}
	return &req, 0, nil
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
