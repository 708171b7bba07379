package vouch

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// check is a referrer the verify phase still has to check. The walker keeps
// it (walker.checks), keyed by the referrer's node.
type check struct {
	node   *Node
	parent ocispec.Descriptor
	found  found
	depth  int
	// m is the parsed manifest, once loaded.
	m *manifest
}

// artifact is the referrer's descriptor with the types its manifest gives.
func (c *check) artifact() ocispec.Descriptor {
	a := c.found.desc
	a.ArtifactType, a.MediaType = c.node.ArtifactType, c.node.MediaType
	return a
}

// loaded is what reading a referrer's manifest found out about its node.
type loaded struct {
	mediaType, artifactType string
	annotations             map[string]string
	failed                  string // why the node cannot be trusted
	dropped                 bool   // filtered out by Discovery.ArtifactType
}

// apply writes what l found out onto n. Whether n was dropped is the
// caller's to act on (walker.referrer).
func (l *loaded) apply(n *Node) {
	n.MediaType, n.ArtifactType = l.mediaType, l.artifactType
	if l.annotations != nil {
		n.Annotations = l.annotations
	}
	if l.failed != "" {
		n.fail(l.failed)
	}
}

// load fetches and parses c's manifest (unless discovery already read it)
// and checks that it names c's parent as its subject. It touches no node:
// the verify phase applies the result under its lock.
func (w *walker) load(ctx context.Context, c *check) (*loaded, error) {
	f := c.found
	l := &loaded{mediaType: f.desc.MediaType, artifactType: f.desc.ArtifactType}
	data := f.manifest
	if data == nil {
		var err error
		if data, err = w.fetch(ctx, f.desc); err != nil {
			if isContentError(err) {
				l.failed = fmt.Sprintf("fetch manifest: %v", err)
				return l, nil
			}
			return nil, fmt.Errorf("fetch referrer %s: %w", f.desc.Digest, err)
		}
	}
	m, err := parseManifest(data)
	if err != nil {
		l.failed = err.Error()
		return l, nil
	}
	if m.MediaType != "" {
		l.mediaType = m.MediaType
	}
	l.annotations = m.Annotations
	// The fetched manifest is the truth, not the registry's index. Cosign's
	// tag-layout manifests carry no type and no subject: the tag says both;
	// for BuildKit's attestation manifests the subject's index does.
	if f.source != SourceCosignTag && f.source != SourceIndexAttestation {
		l.artifactType = m.artifactType()
		if m.Subject == nil || m.Subject.Digest != c.parent.Digest {
			l.failed = fmt.Sprintf("listed as a referrer of %s, but its manifest names subject %s", c.parent.Digest, subjectDigest(m.Subject))
			return l, nil
		}
	}
	if c.depth == 1 && w.e.Discovery.ArtifactType != "" && l.artifactType != w.e.Discovery.ArtifactType {
		l.dropped = true
		return l, nil
	}
	c.m = m
	return l, nil
}

// fail marks a node whose content cannot be trusted.
func (n *Node) fail(reason string) {
	n.Outcome, n.Reason = Errored, reason
}

// isContentError tells errors about one artifact's content (bad digest,
// too big, missing, unparsable) from failures to reach the store.
func isContentError(err error) bool {
	var dm *DigestMismatchError
	return errors.As(err, &dm) || errors.Is(err, ErrLimitExceeded) || errors.Is(err, ErrNotFound)
}
