package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/vouch-project/vouch/internal/untrusted"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
)

// Version names the protocol that this package speaks, in requests and
// responses alike. docs/plugins.md specifies it.
const Version = "vouch.plugin/v1"

// Bounds on a response, besides Config.MaxOutputBytes.
const (
	// MaxResponseDepth bounds the nesting of arrays and objects in a
	// response.
	MaxResponseDepth = 32
	// MaxReasonBytes bounds the reason vouch keeps from a response; a longer
	// one is cut.
	MaxReasonBytes = 4096
)

// Request is what vouch writes to a plugin's standard input: one JSON
// document, then end of file.
type Request struct {
	// Version is Version.
	Version string `json:"version"`
	// Verifier says which configured verifier runs the plugin.
	Verifier VerifierInfo `json:"verifier"`
	// Subject is what the artifact refers to.
	Subject Subject `json:"subject"`
	// Artifact is the referrer to check.
	Artifact Artifact `json:"artifact"`
	// Blobs holds the artifact's layers, in manifest order, with their
	// content.
	Blobs []Blob `json:"blobs"`
}

// VerifierInfo names the verifier and carries its configured parameters.
type VerifierInfo struct {
	// Name is the verifier's name in vouch's config file.
	Name string `json:"name"`
	// Parameters is Config.Parameters as configured; {} when there are none.
	Parameters map[string]any `json:"parameters"`
}

// Subject is the node the artifact refers to.
type Subject struct {
	// Reference is the top-level subject vouch was asked about, pinned to
	// its digest ("registry.example/app@sha256:…", or "oci-layout:PATH@…").
	Reference string `json:"reference"`
	// Descriptor is the artifact's subject: the top-level subject, or the
	// referrer that a nested artifact (a signature on an SBOM) refers to.
	Descriptor ocispec.Descriptor `json:"descriptor"`
}

// Artifact is the referrer to check.
type Artifact struct {
	// Descriptor is the referrer's manifest descriptor, with artifactType
	// read from the fetched manifest.
	Descriptor ocispec.Descriptor `json:"descriptor"`
	// Manifest is the referrer's manifest, as vouch parsed it after
	// checking its digest.
	Manifest ocispec.Manifest `json:"manifest"`
}

// Blob is one layer of the artifact and its content.
type Blob struct {
	// Descriptor is the layer's descriptor from the manifest.
	Descriptor ocispec.Descriptor `json:"descriptor"`
	// Data is the layer's content, digest-checked; standard base64 in JSON.
	Data []byte `json:"data"`
}

// Response is what a plugin writes to its standard output: one JSON
// document. docs/plugins.md specifies each field.
type Response struct {
	// Version must be Version.
	Version string `json:"version"`
	// Outcome is "passed", "failed", "skipped" or "error".
	Outcome string `json:"outcome"`
	// Reason says why; required for failed and error.
	Reason string `json:"reason"`
	// Details are facts for reports and policies. Optional; an object.
	Details map[string]any `json:"details,omitempty"`
}

// Result turns a response into a vouch result: "error" becomes Errored.
func (r *Response) Result() vouch.Result {
	outcome := vouch.Outcome(r.Outcome)
	if r.Outcome == "error" {
		outcome = vouch.Errored
	}
	reason := r.Reason
	if reason == "" {
		reason = "the plugin says " + r.Outcome
	}
	return vouch.Result{Outcome: outcome, Reason: reason, Details: r.Details}
}

// ParseResponse reads a plugin's standard output: exactly one JSON object
// of this protocol's version, nesting at most MaxResponseDepth deep, with a
// known outcome. The reason is cut to MaxReasonBytes and control characters
// in it become spaces, so that a plugin cannot forge lines in a report or
// drive a terminal. Unknown members are ignored.
func ParseResponse(data []byte) (*Response, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("no response on standard output")
	}
	if data[0] != '{' {
		return nil, fmt.Errorf("the output is not a JSON object: it starts %s", quoteHead(data))
	}
	if err := untrusted.CheckJSONDepth(data, MaxResponseDepth); err != nil {
		return nil, err
	}
	var raw struct {
		Version *string         `json:"version"`
		Outcome *string         `json:"outcome"`
		Reason  *string         `json:"reason"`
		Details json.RawMessage `json:"details"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("the output is not a JSON response: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("the output has more after the JSON response")
	}
	switch {
	case raw.Version == nil:
		return nil, fmt.Errorf("the response has no version; vouch speaks %s", Version)
	case *raw.Version != Version:
		return nil, fmt.Errorf("the response is version %s; vouch speaks %s", quote(*raw.Version), Version)
	case raw.Outcome == nil:
		return nil, errors.New("the response has no outcome")
	}
	r := &Response{Version: *raw.Version, Outcome: *raw.Outcome}
	switch r.Outcome {
	case "passed", "failed", "skipped", "error":
	default:
		return nil, fmt.Errorf("the response's outcome %s is not passed, failed, skipped or error", quote(r.Outcome))
	}
	if raw.Reason != nil {
		r.Reason = untrusted.Text(*raw.Reason, MaxReasonBytes)
	}
	if r.Reason == "" && (r.Outcome == "failed" || r.Outcome == "error") {
		return nil, fmt.Errorf("the response's outcome is %s but it gives no reason", r.Outcome)
	}
	if len(raw.Details) > 0 && string(raw.Details) != "null" {
		if err := json.Unmarshal(raw.Details, &r.Details); err != nil {
			return nil, errors.New("the response's details are not a JSON object")
		}
	}
	return r, nil
}

// quote shows an untrusted string in an error, bounded and sanitized.
func quote(s string) string {
	return fmt.Sprintf("%q", untrusted.Text(s, 64))
}

// quoteHead shows the start of untrusted output in an error.
func quoteHead(data []byte) string {
	return quote(string(data[:min(len(data), 64)]))
}
