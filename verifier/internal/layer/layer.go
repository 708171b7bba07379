// Package layer picks the one layer of an artifact manifest that holds the
// document a verifier reads (an SBOM, a SARIF log, a JSON document to
// validate), by one rule shared by those verifiers.
package layer

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// Fallback says what Pick does when no layer matches.
type Fallback int

const (
	// OnlyLayer picks a manifest's only layer when it does not match: the
	// artifact type, rather than the layer's media type, then says what it
	// holds.
	OnlyLayer Fallback = iota
	// Strict picks only a matching layer: for a media type that the user
	// configured.
	Strict
)

// Pick returns the layer of layers whose media type match accepts, when
// exactly one does; else, with OnlyLayer, the only layer of layers. matched
// counts the layers match accepted. ok is false when no layer is picked,
// and the caller says why from the counts:
//
//   - len(layers) == 0: the artifact has no layer;
//   - matched > 1: several layers match, and none is preferred;
//   - otherwise none matches (and, with OnlyLayer, there are several layers).
func Pick(layers []ocispec.Descriptor, match func(mediaType string) bool, fallback Fallback) (picked ocispec.Descriptor, matched int, ok bool) {
	for _, l := range layers {
		if match(l.MediaType) {
			if matched == 0 {
				picked = l
			}
			matched++
		}
	}
	switch {
	case matched == 1:
		return picked, 1, true
	case matched > 1:
		return ocispec.Descriptor{}, matched, false
	case len(layers) == 1 && fallback == OnlyLayer:
		return layers[0], 0, true
	}
	return ocispec.Descriptor{}, 0, false
}
