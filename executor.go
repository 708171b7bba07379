package vouch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Artifact types that vouch gives to cosign's tag-layout manifests, which
// carry no artifactType of their own. They are the types cosign itself uses
// when it attaches the same content as OCI 1.1 referrers.
const (
	CosignSignatureType   = "application/vnd.dev.cosign.artifact.sig.v1+json"
	CosignAttestationType = "application/vnd.dev.cosign.artifact.att.v1+json"
)

// SignatureTypes are the artifact types of signatures: Notary Project
// signatures, cosign's legacy signatures and Sigstore bundles.
var SignatureTypes = []string{
	"application/vnd.cncf.notary.signature",
	CosignSignatureType,
	"application/vnd.dev.sigstore.bundle.v0.3+json",
}

// IsSignature reports whether artifactType is one of SignatureTypes.
func IsSignature(artifactType string) bool {
	return slices.Contains(SignatureTypes, artifactType)
}

// DefaultLeafTypes are the types whose referrers are not looked up unless
// Discovery.LeafTypes says otherwise: the signature types.
var DefaultLeafTypes = SignatureTypes

// DefaultConcurrency bounds the graph's I/O and verification steps that run
// at once for one Executor call.
const DefaultConcurrency = 8

// Discovery chooses where referrers are looked for besides the store's own
// Referrers listing (the OCI referrers API, or its tag-schema fallback).
type Discovery struct {
	// CosignTags also looks up cosign's "sha256-<hex>.sig" and
	// "sha256-<hex>.att" tags for each subject (not for nested referrers).
	// Costs up to two requests per subject. Optional; default false.
	CosignTags bool
	// TagSchema also reads the "sha256-<hex>" referrers tag when the store
	// lists referrers by the API, merging what older clients pushed there.
	// Costs one request per node. Optional; default false.
	TagSchema bool
	// LeafTypes lists artifact types whose own referrers are not looked up:
	// signatures, which nothing refers to in practice, so that verifying a
	// signed image costs no request per signature beyond its manifest and
	// blob. Optional; nil means DefaultLeafTypes, an empty slice none.
	LeafTypes []string
	// ArtifactType, when set, keeps only direct referrers of that type (and,
	// below them, everything). The type is read from each fetched manifest;
	// registries' own filters are not trusted.
	ArtifactType string
}

// Executor walks a subject's graph (subject → referrers → nested referrers,
// and the platform manifests of an index), runs the verifiers on each node,
// and asks the policy for a verdict. It is safe for concurrent use.
type Executor struct {
	// Store opens repositories. Required.
	Store Store
	// Verifiers check nodes; each node is checked by every verifier that
	// handles its artifact type. Optional: with none, the graph is walked
	// and every node is skipped.
	Verifiers []Verifier
	// Policy decides. Required for Verify.
	Policy Policy
	// Limits bound the walk; zero fields take their defaults.
	Limits Limits
	// Concurrency bounds the steps running at once; default
	// DefaultConcurrency.
	Concurrency int
	// Discovery adds referrer sources and filters.
	Discovery Discovery
	// VerifyAll runs every verifier on every referrer even after a policy
	// that implements Settler has settled the verdict. Optional; by default
	// verification stops there and the referrers left are reported skipped.
	VerifyAll bool
}

// FetchReferencer is the optional Repository capability of resolving a tag
// or digest and fetching the manifest in one request.
type FetchReferencer interface {
	FetchReference(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error)
}

// Verify resolves ref, walks its graph, verifies every node and returns the
// report with the policy's verdict. When vouch cannot decide (the registry is
// unreachable, a limit is exceeded, the policy fails) it returns the error
// together with a report whose verdict is Undecided and whose reason says why.
func (e *Executor) Verify(ctx context.Context, ref Reference) (*Report, error) {
	report := &Report{Subject: ref.String(), Reference: ref.String(), Verdict: Undecided}
	root, pinned, err := e.walk(ctx, ref, true)
	if pinned.Digest != "" {
		report.Reference = pinned.String()
	}
	if err != nil {
		report.Reason = "could not decide: " + err.Error()
		return report, err
	}
	report.Root = root
	if e.Policy == nil {
		err := errors.New("no policy configured")
		report.Reason = "could not decide: " + err.Error()
		return report, err
	}
	decision, err := e.Policy.Decide(ctx, pinned, root)
	if err != nil {
		report.Reason = "could not decide: policy: " + err.Error()
		return report, fmt.Errorf("policy: %w", err)
	}
	if decision.Verdict != Allowed && decision.Verdict != Denied {
		err := fmt.Errorf("policy returned verdict %q", decision.Verdict)
		report.Reason = "could not decide: " + err.Error()
		return report, err
	}
	report.Verdict, report.Reason, report.Mode, report.Waived = decision.Verdict, decision.Reason, decision.Mode, decision.Waived
	return report, nil
}

// Graph resolves ref and walks its graph without verifying: what
// `vouch referrers` shows. It returns the reference pinned to its digest.
func (e *Executor) Graph(ctx context.Context, ref Reference) (*Node, Reference, error) {
	return e.walk(ctx, ref, false)
}

// walker holds the state of one walk.
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
	w := &walker{e: e, ref: ref, repo: repo, limits: e.Limits.WithDefaults(), verify: verify, sem: make(chan struct{}, n), n: n}

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
func (w *walker) subject(ctx context.Context, node *Node, desc ocispec.Descriptor, manifest []byte, depth int) error {
	isIndex := desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == mediaTypeDockerManifestList
	if isIndex && manifest == nil {
		var err error
		if manifest, err = w.fetch(ctx, desc); err != nil {
			return fmt.Errorf("fetch index %s: %w", desc.Digest, err)
		}
	}
	var children []ocispec.Descriptor
	if manifest != nil {
		m, err := parseManifest(manifest)
		if err != nil {
			return fmt.Errorf("subject %s: %w", desc.Digest, err)
		}
		node.ArtifactType, node.Annotations = m.artifactType(), m.Annotations
		if isIndex {
			children = m.Manifests
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
		g.Go(func() error {
			// A nested index is walked the same way; a platform manifest's
			// content is not needed, so it is not fetched.
			return w.subject(gctx, c, child, nil, depth)
		})
	}
	g.Go(func() error { return w.referrers(gctx, node, desc, depth, true) })
	return g.Wait()
}

// referrers discovers, fetches, verifies and recurses into the referrers of
// desc, filling node.Referrers.
func (w *walker) referrers(ctx context.Context, node *Node, desc ocispec.Descriptor, depth int, isSubject bool) error {
	found, err := w.discover(ctx, desc, depth, isSubject)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return nil
	}
	if depth >= w.limits.MaxDepth {
		return &LimitError{Limit: "max-depth", What: fmt.Sprintf("referrers of %s at depth %d", desc.Digest, depth+1), Value: int64(depth + 1), Max: int64(w.limits.MaxDepth)}
	}
	children := make([]*Node, len(found))
	g, gctx := errgroup.WithContext(ctx)
	for i, f := range found {
		if err := w.count(); err != nil {
			return err
		}
		children[i] = &Node{Relation: RelReferrer, Source: f.source, MediaType: f.desc.MediaType, Digest: f.desc.Digest, Size: f.desc.Size, ArtifactType: f.desc.ArtifactType}
		g.Go(func() error { return w.referrer(gctx, children[i], desc, f, depth+1) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	kept := children[:0]
	for _, c := range children {
		if c != nil && !c.dropped {
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

// found is one discovered referrer.
type found struct {
	desc   ocispec.Descriptor
	source Source
	// manifest is the referrer's manifest when discovery already read it
	// (a cosign tag fetched in one request), else nil.
	manifest []byte
}

// discover lists the referrers of desc from every configured source,
// de-duplicated by digest.
func (w *walker) discover(ctx context.Context, desc ocispec.Descriptor, depth int, isSubject bool) ([]found, error) {
	var out []found
	seen := map[string]bool{}
	add := func(d ocispec.Descriptor, s Source) {
		if !seen[d.Digest.String()] {
			seen[d.Digest.String()] = true
			out = append(out, found{desc: d, source: s})
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	var api, tagSchema []ocispec.Descriptor
	var cosign []found
	g.Go(func() error {
		if err := w.acquire(gctx); err != nil {
			return err
		}
		defer w.release()
		pages := 0
		// No artifactType filter goes to the store: registries report the
		// type wrongly (go-containerregistry's gives the config media type)
		// and oras-go filters on what they report. The type filter is
		// applied to each fetched manifest instead.
		err := w.repo.Referrers(gctx, desc, "", func(page []ocispec.Descriptor) error {
			pages++
			if pages > w.limits.MaxReferrerPages {
				return &LimitError{Limit: "max-referrer-pages", What: "referrers listing of " + desc.Digest.String(), Value: -1, Max: int64(w.limits.MaxReferrerPages)}
			}
			api = append(api, page...)
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("list referrers of %s: %w", desc.Digest, err)
		}
		return nil
	})
	if w.e.Discovery.TagSchema {
		g.Go(func() error {
			tag := strings.Replace(desc.Digest.String(), ":", "-", 1)
			index, err := w.tagIndex(gctx, tag)
			tagSchema = index
			return err
		})
	}
	if w.e.Discovery.CosignTags && isSubject {
		for _, t := range []struct {
			suffix, artifactType string
		}{{".sig", CosignSignatureType}, {".att", CosignAttestationType}} {
			if w.verify && !w.handled(t.artifactType) {
				continue // nothing would check it: not worth a request
			}
			g.Go(func() error {
				tag := strings.Replace(desc.Digest.String(), ":", "-", 1) + t.suffix
				f, err := w.fetchTag(gctx, tag)
				if err != nil || f == nil {
					return err
				}
				f.desc.ArtifactType = t.artifactType
				mu.Lock()
				cosign = append(cosign, *f)
				mu.Unlock()
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, d := range api {
		add(d, SourceReferrersAPI)
	}
	for _, d := range tagSchema {
		add(d, SourceTagSchema)
	}
	sort.Slice(cosign, func(i, j int) bool { return cosign[i].desc.ArtifactType > cosign[j].desc.ArtifactType })
	for _, f := range cosign {
		if !seen[f.desc.Digest.String()] {
			seen[f.desc.Digest.String()] = true
			out = append(out, f)
		}
	}
	return out, nil
}

// resolveTag resolves a tag, returning nil when it does not exist.
func (w *walker) resolveTag(ctx context.Context, tag string) (*ocispec.Descriptor, error) {
	if err := w.acquire(ctx); err != nil {
		return nil, err
	}
	d, err := w.repo.Resolve(ctx, tag)
	w.release()
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolve tag %s: %w", tag, err)
	}
	return &d, nil
}

// fetchTag reads the manifest under tag in one request when the store can,
// returning nil when the tag does not exist.
func (w *walker) fetchTag(ctx context.Context, tag string) (*found, error) {
	fr, ok := w.repo.(FetchReferencer)
	if !ok {
		d, err := w.resolveTag(ctx, tag)
		if err != nil || d == nil {
			return nil, err
		}
		return &found{desc: *d, source: SourceCosignTag}, nil
	}
	if err := w.acquire(ctx); err != nil {
		return nil, err
	}
	d, data, err := fr.FetchReference(ctx, tag)
	w.release()
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch tag %s: %w", tag, err)
	}
	return &found{desc: d, source: SourceCosignTag, manifest: data}, nil
}

// tagIndex reads the referrers index under a tag-schema tag; none is fine.
func (w *walker) tagIndex(ctx context.Context, tag string) ([]ocispec.Descriptor, error) {
	d, err := w.resolveTag(ctx, tag)
	if err != nil || d == nil {
		return nil, err
	}
	data, err := w.fetch(ctx, *d)
	if err != nil {
		return nil, fmt.Errorf("fetch referrers tag %s: %w", tag, err)
	}
	m, err := parseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("referrers tag %s: %w", tag, err)
	}
	return m.Manifests, nil
}

// referrer fetches one referrer's manifest, checks that it really refers to
// parent, and walks its own referrers; in a verifying walk it leaves a check
// on the node for the verify phase. A referrer listed as a leaf type (a
// signature) is not even fetched yet: the verify phase does it, and may not
// need to. A referrer whose content cannot be trusted becomes an errored
// node; only failures to reach the store at all end the walk.
func (w *walker) referrer(ctx context.Context, node *Node, parent ocispec.Descriptor, f found, depth int) error {
	c := &check{node: node, parent: parent, found: f, depth: depth}
	if w.verify && w.e.Discovery.ArtifactType == "" && w.isLeaf(f.desc.ArtifactType) {
		node.check = c
		return nil
	}
	l, err := w.load(ctx, c)
	if err != nil {
		return err
	}
	l.apply(node)
	if l.failed != "" || l.dropped {
		return nil
	}
	if w.verify {
		node.check = c
	}
	if w.isLeaf(node.ArtifactType) {
		return nil
	}
	return w.referrers(ctx, node, c.artifact(), depth, false)
}

// check is a referrer the verify phase still has to check.
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

func (l *loaded) apply(n *Node) {
	n.MediaType, n.ArtifactType = l.mediaType, l.artifactType
	if l.annotations != nil {
		n.Annotations = l.annotations
	}
	if l.failed != "" {
		n.fail(l.failed)
	}
	n.dropped = l.dropped
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
	// tag-layout manifests carry no type and no subject: the tag says both.
	if f.source != SourceCosignTag {
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

// isLeaf reports whether referrers of artifactType are not looked up.
func (w *walker) isLeaf(artifactType string) bool {
	leaves := w.e.Discovery.LeafTypes
	if leaves == nil {
		leaves = DefaultLeafTypes
	}
	return slices.Contains(leaves, artifactType)
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

func (w *walker) count() error {
	if n := w.nodes.Add(1); n > int64(w.limits.MaxNodes) {
		return &LimitError{Limit: "max-nodes", What: "the graph of " + w.ref.String(), Value: -1, Max: int64(w.limits.MaxNodes)}
	}
	return nil
}

func (w *walker) acquire(ctx context.Context) error {
	select {
	case w.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *walker) release() { <-w.sem }

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

const mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"

// manifest is the union of the fields of an OCI manifest and index that the
// walk reads.
type manifest struct {
	ocispec.Manifest
	Manifests []ocispec.Descriptor `json:"manifests,omitempty"`
}

func parseManifest(data []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("malformed manifest: %v", err)
	}
	return &m, nil
}

// artifactType is the manifest's artifactType, else its config media type
// unless that is the empty descriptor's (OCI image-spec, "Guidelines for
// artifact usage").
func (m *manifest) artifactType() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if t := m.Config.MediaType; t != ocispec.MediaTypeEmptyJSON && t != ocispec.MediaTypeImageConfig && t != "application/vnd.docker.container.image.v1+json" {
		return t
	}
	return ""
}

func subjectDigest(d *ocispec.Descriptor) string {
	if d == nil {
		return "none"
	}
	return d.Digest.String()
}
