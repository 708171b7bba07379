// Package intoto reads the in-toto statements that an attestation artifact
// carries, whatever packaged them, for verifiers that check what a
// statement says rather than who signed it (the sbom verifier on an SPDX
// predicate). It verifies no signature: the cosign verifier does that, on
// the same node.
//
// Layers read, by media type:
//
//   - application/vnd.dsse.envelope.v1+json: a DSSE envelope (cosign's .att
//     tag and its in-toto referrers), whose payload is the statement;
//   - application/vnd.dev.sigstore.bundle.v0.3+json (and the v0.1, v0.2
//     bundle types): a Sigstore bundle, whose dsseEnvelope's payload is;
//   - application/vnd.in-toto+json: the statement itself (BuildKit's
//     attestation manifests).
//
// Other layers are ignored. See
// https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md.
package intoto

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
)

// Layer media types this package reads.
const (
	MediaTypeDSSE   = "application/vnd.dsse.envelope.v1+json"
	MediaTypeInToto = "application/vnd.in-toto+json"
	bundlePrefix    = "application/vnd.dev.sigstore.bundle"
)

// artifactTypes backs Handles.
var artifactTypes = [...]string{
	vouch.CosignAttestationType,
	MediaTypeInToto,
	vouch.SigstoreBundleType,
	vouch.BuildKitAttestationType,
}

// Handles reports whether artifactType is that of an attestation manifest:
// cosign's .att tag (as vouch names it), an in-toto referrer, a Sigstore
// bundle (which may hold a signature instead), or BuildKit's attestation
// manifest.
func Handles(artifactType string) bool { return slices.Contains(artifactTypes[:], artifactType) }

// MaxLayerBytes bounds one envelope, bundle or statement read.
const MaxLayerBytes = 32 << 20

// MaxLayers bounds the layers of one manifest that are read.
const MaxLayers = 64

// Statement is one in-toto statement read from a layer.
type Statement struct {
	// Layer is the index of the layer it was read from.
	Layer int
	// PredicateType is the statement's predicateType.
	PredicateType string
	// Predicate is the statement's predicate, as JSON.
	Predicate json.RawMessage
	// Subjects lists the statement's subject digests as "alg:hex".
	Subjects []string
	// Problem, when not empty, says why the layer could not be read as a
	// statement; the other fields are then empty.
	Problem string
}

// Names reports whether one of the statement's subjects is digest d
// ("alg:hex"); hex digits compare without regard to case.
func (s *Statement) Names(d string) bool {
	return slices.ContainsFunc(s.Subjects, func(x string) bool { return strings.EqualFold(x, d) })
}

// Read returns the statements in the layers of m, fetched with fetch, in
// layer order. A layer that is not a statement's packaging is left out; a
// layer that is, but cannot be read, is a Statement with Problem set. An
// error means a layer could not be fetched, or m has more than MaxLayers
// layers.
func Read(ctx context.Context, m ocispec.Manifest, fetch func(context.Context, ocispec.Descriptor) ([]byte, error)) ([]Statement, error) {
	if len(m.Layers) > MaxLayers {
		return nil, &vouch.LimitError{Limit: "attestation-max-layers", What: "layers of an attestation manifest", Value: int64(len(m.Layers)), Max: MaxLayers}
	}
	var out []Statement
	for i, l := range m.Layers {
		kind := packaging(l.MediaType)
		if kind == "" {
			continue
		}
		if l.Size > MaxLayerBytes {
			out = append(out, Statement{Layer: i, Problem: fmt.Sprintf("layer %s is %d bytes, over the %d read", l.Digest, l.Size, MaxLayerBytes)})
			continue
		}
		data, err := fetch(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("fetch layer %s: %w", l.Digest, err)
		}
		s, err := parse(kind, data)
		if err != nil {
			out = append(out, Statement{Layer: i, Problem: err.Error()})
			continue
		}
		s.Layer = i
		out = append(out, *s)
	}
	return out, nil
}

func packaging(mediaType string) string {
	switch {
	case mediaType == MediaTypeDSSE:
		return "dsse"
	case mediaType == MediaTypeInToto:
		return "statement"
	case strings.HasPrefix(mediaType, bundlePrefix):
		return "bundle"
	}
	return ""
}

type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
}

func parse(kind string, data []byte) (*Statement, error) {
	payload := data
	if kind != "statement" {
		var env envelope
		if kind == "bundle" {
			var b struct {
				DSSE *envelope `json:"dsseEnvelope"`
			}
			if err := json.Unmarshal(data, &b); err != nil {
				return nil, fmt.Errorf("malformed Sigstore bundle: %w", err)
			}
			if b.DSSE == nil {
				return nil, errors.New("the Sigstore bundle holds a message signature, not a statement")
			}
			env = *b.DSSE
		} else if err := json.Unmarshal(data, &env); err != nil {
			return nil, fmt.Errorf("malformed DSSE envelope: %w", err)
		}
		if env.PayloadType != MediaTypeInToto {
			return nil, fmt.Errorf("DSSE payload type is %q, not an in-toto statement", env.PayloadType)
		}
		var err error
		if payload, err = base64.StdEncoding.DecodeString(env.Payload); err != nil {
			return nil, fmt.Errorf("DSSE payload: %w", err)
		}
	}
	var st struct {
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("malformed in-toto statement: %w", err)
	}
	if st.PredicateType == "" {
		return nil, errors.New("the in-toto statement has no predicateType")
	}
	s := &Statement{PredicateType: st.PredicateType, Predicate: st.Predicate}
	for _, sub := range st.Subject {
		for _, alg := range slices.Sorted(maps.Keys(sub.Digest)) {
			s.Subjects = append(s.Subjects, alg+":"+sub.Digest[alg])
		}
	}
	return s, nil
}
