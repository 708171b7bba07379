package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"

	vouch "github.com/vouch-project/vouch"
)

// Manifest media types: content of these types is fetched from the
// manifests endpoint and bounded by MaxManifestBytes.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeArtifactManifest   = "application/vnd.oci.artifact.manifest.v1+json"
)

func isManifest(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		mediaTypeDockerManifest, mediaTypeDockerManifestList, mediaTypeArtifactManifest:
		return true
	}
	return false
}

// cacheOverhead is added to the size of every cached value, for its key
// and bookkeeping.
const cacheOverhead = 256

// repository is one registry repository. It implements vouch.Repository and
// vouch.FetchReferencer.
type repository struct {
	s       *Store
	name    string // "host/repository": the prefix of its cache keys
	host    string
	state   *hostState
	clients *repoClients
}

var (
	_ vouch.Repository      = (*repository)(nil)
	_ vouch.FetchReferencer = (*repository)(nil)
)

// cached is content fetched by digest: its bytes, digest-checked, and the
// descriptor the registry gave for it.
type cached struct {
	desc ocispec.Descriptor
	data []byte
	// scope is the Scope of the credentials it was fetched with: a Resolve
	// by digest answers from the cache only in the same scope.
	scope string
}

// Resolve returns the descriptor of the manifest that a tag or digest names.
func (r *repository) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	d, isDigest := parseDigest(reference)
	scope := Scope(ctx, r.host)
	if isDigest {
		// Resolving shows access to the repository: the cache answers
		// only for content fetched with the same credentials
		// (WithCredentials); else the registry is asked.
		if v, ok := r.s.cache.get(r.contentKey(d)); ok && v.(*cached).scope == scope && isManifest(v.(*cached).desc.MediaType) {
			return v.(*cached).desc, nil
		}
	} else if v, ok := r.s.cache.get(r.tagKey(scope, reference)); ok {
		return v.(ocispec.Descriptor), nil
	}
	var desc ocispec.Descriptor
	err := r.do(ctx, func(ctx context.Context, rr *remote.Repository) error {
		var err error
		desc, err = rr.Resolve(ctx, reference)
		return err
	})
	if err != nil {
		return ocispec.Descriptor{}, r.fail(err)
	}
	if !isDigest {
		r.cacheTag(scope, reference, desc)
	}
	return desc, nil
}

// FetchReference resolves a tag or digest and returns the manifest's
// descriptor and bytes, from one GET: bounded by MaxManifestBytes and
// checked against the digest.
func (r *repository) FetchReference(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error) {
	limit := r.s.limits.MaxManifestBytes
	if d, ok := parseDigest(reference); ok {
		c, err := r.fetchDigest(ctx, d, true)
		if err != nil {
			return ocispec.Descriptor{}, nil, err
		}
		if int64(len(c.data)) > limit {
			return ocispec.Descriptor{}, nil, manifestLimit(d, int64(len(c.data)), limit)
		}
		return c.desc, bytes.Clone(c.data), nil
	}
	scope := Scope(ctx, r.host)
	if v, ok := r.s.cache.get(r.tagKey(scope, reference)); ok {
		desc := v.(ocispec.Descriptor)
		data, err := r.Fetch(ctx, desc)
		if err != nil {
			return ocispec.Descriptor{}, nil, err
		}
		return desc, data, nil
	}
	var c *cached
	err := r.do(ctx, func(ctx context.Context, rr *remote.Repository) error {
		desc, rc, err := rr.Manifests().FetchReference(ctx, reference)
		if err != nil {
			return err
		}
		defer rc.Close()
		if desc.Size > limit {
			return manifestLimit(desc.Digest, desc.Size, limit)
		}
		data, err := readVerified(rc, desc.Digest, limit, func() error { return manifestLimit(desc.Digest, -1, limit) })
		if err != nil {
			return err
		}
		if int64(len(data)) != desc.Size {
			return sizeMismatch("manifest", desc, len(data))
		}
		c = &cached{desc: desc, data: data, scope: scope}
		return nil
	})
	if err != nil {
		return ocispec.Descriptor{}, nil, r.fail(err)
	}
	r.s.cache.add(r.contentKey(c.desc.Digest), c, int64(len(c.data))+cacheOverhead, 0)
	r.cacheTag(scope, reference, c.desc)
	return c.desc, bytes.Clone(c.data), nil
}

// Fetch returns the content desc names. Its size is checked against the
// limits before any request, its bytes against desc's size and digest.
func (r *repository) Fetch(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	manifest := isManifest(desc.MediaType)
	limit, limitError := r.s.limits.MaxBlobBytes, blobLimit
	if manifest {
		limit, limitError = r.s.limits.MaxManifestBytes, manifestLimit
	}
	if desc.Size > limit {
		return nil, limitError(desc.Digest, desc.Size, limit)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("fetch %s: negative size %d in its descriptor", desc.Digest, desc.Size)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("fetch %q: %w", desc.Digest, err)
	}
	c, err := r.fetchDigest(ctx, desc.Digest, manifest)
	if err != nil {
		return nil, err
	}
	if n := int64(len(c.data)); n > limit {
		return nil, limitError(desc.Digest, n, limit)
	}
	if int64(len(c.data)) != desc.Size {
		return nil, sizeMismatch("content", desc, len(c.data))
	}
	return bytes.Clone(c.data), nil
}

// fetchDigest returns the content of digest d, from the cache or by one
// request that concurrent callers share.
func (r *repository) fetchDigest(ctx context.Context, d digest.Digest, manifest bool) (*cached, error) {
	key := r.contentKey(d)
	if v, ok := r.s.cache.get(key); ok {
		return v.(*cached), nil
	}
	flight := key + " blob"
	if manifest {
		flight = key + " manifest"
	}
	for try := 0; ; try++ {
		ch := r.s.flight.DoChan(flight, func() (any, error) {
			if v, ok := r.s.cache.get(key); ok {
				return v, nil
			}
			c, err := r.fetchDigestOnce(ctx, d, manifest)
			if err != nil {
				return nil, err
			}
			r.s.cache.add(key, c, int64(len(c.data))+cacheOverhead, 0)
			return c, nil
		})
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case res := <-ch:
			if res.Err == nil {
				return res.Val.(*cached), nil
			}
			// The caller whose request this was gave up; this one has not.
			if res.Shared && ctx.Err() == nil && try < 3 &&
				(errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded)) {
				continue
			}
			return nil, res.Err
		}
	}
}

func (r *repository) fetchDigestOnce(ctx context.Context, d digest.Digest, manifest bool) (*cached, error) {
	limit, limitError := r.s.limits.MaxBlobBytes, blobLimit
	if manifest {
		limit, limitError = r.s.limits.MaxManifestBytes, manifestLimit
	}
	var c *cached
	err := r.do(ctx, func(ctx context.Context, rr *remote.Repository) error {
		var store registry.BlobStore = rr.Blobs()
		if manifest {
			store = rr.Manifests()
		}
		desc, rc, err := store.FetchReference(ctx, d.String())
		if err != nil {
			return err
		}
		defer rc.Close()
		if desc.Size > limit {
			return limitError(d, desc.Size, limit)
		}
		data, err := readVerified(rc, d, limit, func() error { return limitError(d, -1, limit) })
		if err != nil {
			return err
		}
		c = &cached{desc: ocispec.Descriptor{MediaType: desc.MediaType, Digest: d, Size: int64(len(data))}, data: data, scope: Scope(ctx, r.host)}
		return nil
	})
	if err != nil {
		return nil, r.fail(err)
	}
	return c, nil
}

// readVerified reads at most limit bytes and checks them against d.
func readVerified(rc io.Reader, d digest.Digest, limit int64, tooBig func() error) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooBig()
	}
	if actual := d.Algorithm().FromBytes(data); actual != d {
		return nil, &vouch.DigestMismatchError{Expected: d.String(), Actual: actual.String()}
	}
	return data, nil
}

// Referrers lists the manifests whose subject is desc, by the referrers API
// (paginated, at most MaxReferrerPages pages) or, on registries without it,
// the referrers tag schema. The listing is read whole before fn sees its
// pages, so fn may make requests of its own.
func (r *repository) Referrers(ctx context.Context, desc ocispec.Descriptor, artifactType string, fn func(page []ocispec.Descriptor) error) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("referrers of %q: %w", desc.Digest, err)
	}
	key := "referrers " + r.name + "@" + desc.Digest.String() + " " + artifactType
	if v, ok := r.s.cache.get(key); ok {
		return replay(v.([][]ocispec.Descriptor), fn)
	}
	var pages [][]ocispec.Descriptor
	err := r.do(ctx, func(ctx context.Context, rr *remote.Repository) error {
		var err error
		pages, err = r.listReferrers(ctx, rr, desc, artifactType)
		return err
	})
	switch {
	case errors.Is(err, errdef.ErrTooManyPages):
		return &vouch.LimitError{Limit: "max-referrer-pages", What: "the referrers listing of " + desc.Digest.String(), Value: -1, Max: int64(r.s.limits.MaxReferrerPages)}
	case errors.Is(err, errdef.ErrSizeExceedsLimit):
		return &vouch.LimitError{Limit: "max-manifest-bytes", What: "the referrers index of " + desc.Digest.String(), Value: -1, Max: r.s.limits.MaxManifestBytes}
	case err != nil:
		return r.fail(err)
	}
	if r.s.opts.TagTTL > 0 {
		size := int64(cacheOverhead)
		for _, p := range pages {
			for _, d := range p {
				size += cacheOverhead + int64(len(d.MediaType)+len(d.ArtifactType)+len(d.Digest))
				for k, v := range d.Annotations {
					size += int64(len(k) + len(v))
				}
			}
		}
		r.s.cache.add(key, pages, size, r.s.opts.TagTTL)
	}
	return replay(pages, fn)
}

func replay(pages [][]ocispec.Descriptor, fn func([]ocispec.Descriptor) error) error {
	for _, p := range pages {
		if err := fn(slices.Clone(p)); err != nil {
			return err
		}
	}
	return nil
}

// listReferrers reads the referrers listing of desc through rr's client the
// way the host's referrers capability says, finding it out first when it
// is not known yet.
func (r *repository) listReferrers(ctx context.Context, rr *remote.Repository, desc ocispec.Descriptor, artifactType string) ([][]ocispec.Descriptor, error) {
	switch r.state.referrers.Load() {
	case referrersAPI:
		return collect(ctx, r.fixed(rr, true), desc, artifactType)
	case referrersTagSchema:
		return collect(ctx, r.fixed(rr, false), desc, artifactType)
	}
	return r.discoverReferrers(ctx, rr, desc, artifactType)
}

// discoverReferrers lists the referrers of desc on a host whose support of
// the referrers API is not known yet, in one round trip where it can. It
// reads the referrers tag (the tag schema) while the host is probed, and
// keeps that listing if the host turns out to lack the API. The probe is a
// call of the referrers API for desc, and there is one per host at a time:
// a caller that finds one in flight waits for its answer instead of
// sending its own, then lists by the API only if the host has it. The tag
// read ends before discoverReferrers returns: when the API answered, it is
// left to finish (it went out with the probe, so it costs no wait to
// speak of, and its connection is reused); on a failure it is canceled.
func (r *repository) discoverReferrers(ctx context.Context, rr *remote.Repository, desc ocispec.Descriptor, artifactType string) ([][]ocispec.Descriptor, error) {
	type listing struct {
		pages [][]ocispec.Descriptor
		err   error
	}
	tagCtx, cancelTag := context.WithCancel(withOwnSlots(ctx))
	byTag := make(chan listing, 1)
	go func() {
		pages, err := collect(tagCtx, r.detached(rr, false), desc, artifactType)
		byTag <- listing{pages, err}
	}()
	// finish returns pages and err, after the tag read has ended.
	finish := func(pages [][]ocispec.Descriptor, err error) ([][]ocispec.Descriptor, error) {
		if err != nil {
			cancelTag()
		}
		<-byTag
		cancelTag()
		return pages, err
	}
	for {
		switch r.state.referrers.Load() {
		case referrersAPI:
			return finish(collect(ctx, r.fixed(rr, true), desc, artifactType))
		case referrersTagSchema:
			l := <-byTag
			cancelTag()
			return l.pages, l.err
		}
		lead, done := r.state.startProbe()
		if lead {
			pages, err := collect(ctx, r.detached(rr, true), desc, artifactType)
			learned := capabilityFrom(err)
			r.state.endProbe(learned)
			if learned != referrersTagSchema {
				return finish(pages, err)
			}
			continue // the listing is the tag's
		}
		if done != nil {
			select {
			case <-done:
			case <-ctx.Done():
				return finish(nil, ctx.Err())
			}
		}
	}
}

// capabilityFrom tells what the outcome of a referrers API call says about
// the host: an answer, even one over a limit, means it has the API; a 404
// without a "repository unknown" error code, or an answer that is not an
// image index, means it has not (distribution-spec, "Listing Referrers");
// anything else (no answer, 401, an unknown repository) says nothing.
func capabilityFrom(err error) int32 {
	switch {
	case err == nil, errors.Is(err, errdef.ErrTooManyPages):
		return referrersAPI
	case errors.Is(err, errdef.ErrUnsupported):
		return referrersTagSchema
	}
	return referrersUnknown
}

// collect reads the whole referrers listing of desc through rr.
func collect(ctx context.Context, rr *remote.Repository, desc ocispec.Descriptor, artifactType string) ([][]ocispec.Descriptor, error) {
	var pages [][]ocispec.Descriptor
	err := rr.Referrers(ctx, desc, artifactType, func(page []ocispec.Descriptor) error {
		pages = append(pages, slices.Clone(page))
		return nil
	})
	return pages, err
}

// fixed returns a client of rr's repository that lists referrers only by
// the referrers API (api true) or only by the tag schema: rr itself, told
// so, unless it was told otherwise before.
func (r *repository) fixed(rr *remote.Repository, api bool) *remote.Repository {
	if rr.SetReferrersCapability(api) == nil {
		return rr
	}
	return r.detached(rr, api)
}

// detached returns a new client of rr's repository that lists referrers
// only by the referrers API (api true) or only by the tag schema, leaving
// rr's capability unset.
func (r *repository) detached(rr *remote.Repository, api bool) *remote.Repository {
	c := r.s.newRemote(rr.Reference, rr.PlainHTTP)
	_ = c.SetReferrersCapability(api) // a new client's is unset
	return c
}

// do runs fn with the repository's oras-go client. An insecure host that
// answers plain HTTP to HTTPS is switched to plain HTTP for good, and fn
// runs again.
func (r *repository) do(ctx context.Context, fn func(context.Context, *remote.Repository) error) error {
	ctx = withSlots(ctx)
	plain := r.clients.plain != nil && r.state.plain.Load()
	rr := r.clients.tls
	if plain {
		rr = r.clients.plain
	}
	err := fn(ctx, rr)
	if err != nil && r.clients.plain != nil && !plain && errors.Is(err, http.ErrSchemeMismatch) {
		r.state.plain.Store(true)
		err = fn(ctx, r.clients.plain)
	}
	return err
}

func (r *repository) contentKey(d digest.Digest) string { return r.name + "@" + d.String() }

// tagKey is the cache key of a tag's resolution by requests of scope
// (Scope: "" for the Store's own credentials).
func (r *repository) tagKey(scope, tag string) string {
	if scope != "" {
		return "tag " + scope + " " + r.name + ":" + tag
	}
	return "tag " + r.name + ":" + tag
}

func (r *repository) cacheTag(scope, tag string, desc ocispec.Descriptor) {
	if r.s.opts.TagTTL > 0 {
		r.s.cache.add(r.tagKey(scope, tag), desc, cacheOverhead, r.s.opts.TagTTL)
	}
}

// parseDigest tells a digest reference from a tag.
func parseDigest(reference string) (digest.Digest, bool) {
	d, err := digest.Parse(reference)
	return d, err == nil
}

func manifestLimit(d digest.Digest, size, limit int64) error {
	return &vouch.LimitError{Limit: "max-manifest-bytes", What: "manifest " + d.String(), Value: size, Max: limit}
}

func blobLimit(d digest.Digest, size, limit int64) error {
	return &vouch.LimitError{Limit: "max-blob-bytes", What: "blob " + d.String(), Value: size, Max: limit}
}

func sizeMismatch(what string, desc ocispec.Descriptor, n int) error {
	return fmt.Errorf("%s %s is %d bytes, but its descriptor says %d", what, desc.Digest, n, desc.Size)
}
