package vouch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// walker holds the state of one walk: subject → referrers → nested
// referrers, and the platform manifests of an index.
type walker struct {
	e      *Executor
	ref    Reference
	repo   Repository
	limits Limits
	verify bool
	sem    chan struct{}
	nodes  atomic.Int64
	// n bounds the checks of the verify phase that run at once.
	n int

	// mu guards checks.
	mu sync.Mutex
	// checks holds, for the referrers of a verifying walk, what the verify
	// phase still has to do for each. It is the walker's, not the tree's:
	// the report's nodes carry nothing but what is reported.
	checks map[*Node]*check
}

func (e *Executor) walk(ctx context.Context, ref Reference, verify bool) (*Node, Reference, error) {
	if e.Store == nil {
		return nil, ref, errors.New("no store configured")
	}
	repo, err := e.Store.Repository(ctx, ref)
	if err != nil {
		return nil, ref, err
	}
	n := e.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	w := &walker{e: e, ref: ref, repo: repo, limits: e.Limits.WithDefaults(), verify: verify, sem: make(chan struct{}, n), n: n, checks: map[*Node]*check{}}

	desc, manifest, err := w.resolve(ctx, ref.Version())
	if err != nil {
		return nil, ref, fmt.Errorf("resolve %s: %w", ref, err)
	}
	if ref.Digest != "" && desc.Digest != ref.Digest {
		return nil, ref, &DigestMismatchError{Expected: ref.Digest.String(), Actual: desc.Digest.String()}
	}
	pinned := ref.WithDigest(desc.Digest)
	w.ref = pinned
	root := &Node{Relation: RelSubject, MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	w.nodes.Add(1)
	if err := w.subject(ctx, root, desc, manifest, 0); err != nil {
		return nil, pinned, err
	}
	if verify {
		if err := w.verifyGraph(ctx, root); err != nil {
			return nil, pinned, err
		}
	}
	return root, pinned, nil
}

// resolve returns a subject's descriptor and, when the store could fetch it
// in the same request, its manifest.
func (w *walker) resolve(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error) {
	if err := w.acquire(ctx); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer w.release()
	if fr, ok := w.repo.(FetchReferencer); ok {
		return fr.FetchReference(ctx, reference)
	}
	desc, err := w.repo.Resolve(ctx, reference)
	return desc, nil, err
}

// subject fills node, a subject (the root, or a platform manifest of an
// index): its manifest details, its platform manifests, its referrers.
// attestations are referrers its parent index lists for it (BuildKit's).
func (w *walker) subject(ctx context.Context, node *Node, desc ocispec.Descriptor, manifest []byte, depth int, attestations ...found) error {
	isIndex := desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == mediaTypeDockerManifestList
	if isIndex && manifest == nil {
		var err error
		if manifest, err = w.fetch(ctx, desc); err != nil {
			return fmt.Errorf("fetch index %s: %w", desc.Digest, err)
		}
	}
	var (
		children []ocispec.Descriptor
		listed   map[string][]found
	)
	if manifest != nil {
		m, err := parseManifest(manifest)
		if err != nil {
			return fmt.Errorf("subject %s: %w", desc.Digest, err)
		}
		node.ArtifactType, node.Annotations = m.artifactType(), m.Annotations
		if isIndex {
			children, listed = splitAttestations(m.Manifests)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	node.Manifests = make([]*Node, len(children))
	for i, child := range children {
		if err := w.count(); err != nil {
			return err
		}
		c := &Node{Relation: RelManifest, MediaType: child.MediaType, Digest: child.Digest, Size: child.Size, ArtifactType: child.ArtifactType}
		c.Platform = child.Platform
		node.Manifests[i] = c
		extra := listed[child.Digest.String()]
		g.Go(func() error {
			// A nested index is walked the same way; a platform manifest's
			// content is not needed, so it is not fetched.
			return w.subject(gctx, c, child, nil, depth, extra...)
		})
	}
	g.Go(func() error { return w.referrers(gctx, node, desc, depth, true, attestations...) })
	return g.Wait()
}

// splitAttestations separates the manifests of an index into its platform
// manifests and BuildKit's attestation manifests, which become referrers
// of the platform manifest they name (by digest). An attestation manifest
// that names no manifest of the index stays where it is.
func splitAttestations(all []ocispec.Descriptor) ([]ocispec.Descriptor, map[string][]found) {
	listed := map[string]bool{}
	for _, d := range all {
		listed[d.Digest.String()] = true
	}
	var platforms []ocispec.Descriptor
	var atts map[string][]found
	for _, d := range all {
		about := d.Annotations[AnnotationDockerReferenceDigest]
		if d.Annotations[AnnotationDockerReferenceType] != DockerReferenceAttestation || !listed[about] || about == d.Digest.String() {
			platforms = append(platforms, d)
			continue
		}
		if atts == nil {
			atts = map[string][]found{}
		}
		a := d
		a.ArtifactType = BuildKitAttestationType
		atts[about] = append(atts[about], found{desc: a, source: SourceIndexAttestation})
	}
	return platforms, atts
}

// referrers discovers, fetches, verifies and recurses into the referrers of
// desc, filling node.Referrers.
// listed are referrers known without discovery (BuildKit's attestation
// manifests, from the parent index).
func (w *walker) referrers(ctx context.Context, node *Node, desc ocispec.Descriptor, depth int, isSubject bool, listed ...found) error {
	found, err := w.discover(ctx, desc, depth, isSubject)
	if err != nil {
		return err
	}
	for _, l := range listed {
		dup := false
		for _, f := range found {
			dup = dup || f.desc.Digest == l.desc.Digest
		}
		if !dup {
			found = append(found, l)
		}
	}
	if len(found) == 0 {
		return nil
	}
	if depth >= w.limits.MaxDepth {
		return &LimitError{Limit: "max-depth", What: fmt.Sprintf("referrers of %s at depth %d", desc.Digest, depth+1), Value: int64(depth + 1), Max: int64(w.limits.MaxDepth)}
	}
	children := make([]*Node, len(found))
	// dropped[i] marks children[i] as filtered out by Discovery.ArtifactType;
	// each goroutine writes its own element.
	dropped := make([]bool, len(found))
	g, gctx := errgroup.WithContext(ctx)
	for i, f := range found {
		if err := w.count(); err != nil {
			return err
		}
		children[i] = &Node{Relation: RelReferrer, Source: f.source, MediaType: f.desc.MediaType, Digest: f.desc.Digest, Size: f.desc.Size, ArtifactType: f.desc.ArtifactType}
		g.Go(func() error {
			var err error
			dropped[i], err = w.referrer(gctx, children[i], desc, f, depth+1)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	kept := children[:0]
	for i, c := range children {
		if c != nil && !dropped[i] {
			kept = append(kept, c)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool {
		if kept[i].ArtifactType != kept[j].ArtifactType {
			return kept[i].ArtifactType < kept[j].ArtifactType
		}
		return kept[i].Digest < kept[j].Digest
	})
	node.Referrers = kept
	return nil
}

// referrer fetches one referrer's manifest, checks that it really refers to
// parent, and walks its own referrers; in a verifying walk it leaves a check
// for the node to the verify phase. A referrer listed as a leaf type (a
// signature) is not even fetched yet: the verify phase does it, and may not
// need to. A referrer whose content cannot be trusted becomes an errored
// node; only failures to reach the store at all end the walk. It reports
// whether Discovery.ArtifactType filtered the referrer out.
func (w *walker) referrer(ctx context.Context, node *Node, parent ocispec.Descriptor, f found, depth int) (dropped bool, err error) {
	c := &check{node: node, parent: parent, found: f, depth: depth}
	if w.verify && w.e.Discovery.ArtifactType == "" && w.isLeaf(f.desc.ArtifactType) {
		w.setCheck(c)
		return false, nil
	}
	l, err := w.load(ctx, c)
	if err != nil {
		return false, err
	}
	l.apply(node)
	if l.dropped {
		return true, nil
	}
	if l.failed != "" {
		return false, nil
	}
	if w.verify {
		w.setCheck(c)
	}
	if w.isLeaf(node.ArtifactType) {
		return false, nil
	}
	return false, w.referrers(ctx, node, c.artifact(), depth, false)
}

// setCheck records c as the verify phase's work on c.node.
func (w *walker) setCheck(c *check) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checks[c.node] = c
}

// checkOf returns the verify phase's work on n, or nil.
func (w *walker) checkOf(n *Node) *check {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.checks[n]
}

// isLeaf reports whether referrers of artifactType are not looked up.
func (w *walker) isLeaf(artifactType string) bool {
	if leaves := w.e.Discovery.LeafTypes; leaves != nil {
		return slices.Contains(leaves, artifactType)
	}
	return IsSignature(artifactType)
}

// handled reports whether some verifier checks artifactType.
func (w *walker) handled(artifactType string) bool {
	return slices.ContainsFunc(w.e.Verifiers, func(v Verifier) bool { return v.Handles(artifactType) })
}

// fetch reads content under the concurrency bound.
func (w *walker) fetch(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if err := w.acquire(ctx); err != nil {
		return nil, err
	}
	defer w.release()
	return w.repo.Fetch(ctx, desc)
}

// count adds a node to the walk, failing past Limits.MaxNodes.
func (w *walker) count() error {
	if n := w.nodes.Add(1); n > int64(w.limits.MaxNodes) {
		return &LimitError{Limit: "max-nodes", What: "the graph of " + w.ref.String(), Value: -1, Max: int64(w.limits.MaxNodes)}
	}
	return nil
}

// acquire takes one of the walk's concurrency slots.
func (w *walker) acquire(ctx context.Context) error {
	select {
	case w.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives back a slot taken by acquire.
func (w *walker) release() { <-w.sem }
