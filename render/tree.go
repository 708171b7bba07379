package render

import (
	"errors"
	"io"
	"strings"

	"github.com/vouch-project/vouch"
)

// Tree writes the artifact graph below root as `vouch referrers -o tree`
// prints it, like `oras discover -o tree`: the title (opts.Title, else the
// root's media type and digest), then each platform manifest and referrer
// with its type and full digest, nested. It shows no outcomes.
func Tree(w io.Writer, root *vouch.Node, opts TextOptions) error {
	if root == nil {
		return errors.New("render: no graph")
	}
	s := newStyle(opts)
	line := func(n *vouch.Node) string {
		if n == root && opts.Title != "" {
			return clean(opts.Title)
		}
		parts := make([]string, 0, 4)
		if n.Relation == vouch.RelManifest {
			parts = append(parts, manifestLabel(n))
		}
		digest := string(n.Digest)
		if digest == "" {
			digest = "(no digest)"
		}
		parts = append(parts, clean(displayType(n)), clean(digest))
		if note := sourceNote(n.Source); note != "" {
			parts = append(parts, clean(note))
		}
		return strings.Join(parts, " ")
	}
	var b strings.Builder
	s.writeTree(&b, root, "", line, nil)
	_, err := io.WriteString(w, b.String())
	return err
}
