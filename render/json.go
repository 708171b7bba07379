package render

import (
	"encoding/json"
	"errors"
	"io"

	"github.com/vouch-project/vouch"
)

// JSON writes reports as the indented JSON document `vouch verify -o json`
// prints; the struct tags of vouch.Reports define the format.
func JSON(w io.Writer, reports *vouch.Reports) error {
	if reports == nil {
		return errors.New("render: no reports")
	}
	return encode(w, reports)
}

// GraphJSON writes the artifact graph below root as the indented JSON that
// `vouch referrers -o json` prints: one vouch.Node object, nested.
func GraphJSON(w io.Writer, root *vouch.Node) error {
	if root == nil {
		return errors.New("render: no graph")
	}
	return encode(w, root)
}

// encode writes v as indented JSON without HTML escaping, so that "<", ">"
// and "&" in reasons stay readable. Map keys come out sorted.
func encode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
