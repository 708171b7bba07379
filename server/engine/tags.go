package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
)

// This file holds tag pinning: a tag's digest is cached, dated, used as it
// is for TagTTL, then up to TagMaxStale while one background refresh
// resolves the tag again.

// maxRefreshing bounds the tags whose background refresh is remembered
// (running, or failed less than TagTTL ago).
const maxRefreshing = 4096

// pin returns ref pinned to its digest, resolving (and caching) its tag. A
// cached digest is used as it is for TagTTL, then up to TagMaxStale while a
// background refresh resolves the tag again; after that the tag is
// resolved on the request's path.
//
// With Options.CredentialScope, tags are cached per scope, and a digest is
// resolved as a tag is (per scope, cached, refreshed): the request shows
// that its credentials reach the image.
func (e *Engine) pin(ctx context.Context, exec *vouch.Executor, ref vouch.Reference) (vouch.Reference, error) {
	key := "tag:" + ref.Name() + ":" + ref.Tag
	if e.opts.CredentialScope != nil {
		key = "tag:" + e.opts.CredentialScope(ctx, ref.Registry) + ":" + ref.Name() + ":" + ref.Version()
	} else if ref.Digest != "" {
		return ref, nil
	}
	if data, ok := e.cache.Get(ctx, key); ok {
		if d, at, ok := parseTagEntry(data); ok {
			age := e.opts.Now().Sub(at)
			switch {
			case age < e.opts.TagTTL:
				e.hook("tag", true)
				return ref.WithDigest(d), nil
			case age < e.opts.TagMaxStale:
				e.hook("tag", true)
				e.refresh(ctx, exec, ref, key)
				return ref.WithDigest(d), nil
			}
		}
	}
	e.hook("tag", false)
	// On the request's path the verification follows, which reads the
	// manifest: one GET resolves the tag and brings it (cached by digest
	// in the store), where a HEAD would cost a request and a round trip
	// more.
	d, err := e.resolveAs(ctx, key, exec, ref, key, true)
	if err != nil {
		return ref, fmt.Errorf("resolve %s: %w", ref, err)
	}
	if ref.Digest != "" && d != ref.Digest {
		return ref, fmt.Errorf("resolve %s: the registry answered %s", ref, d)
	}
	return ref.WithDigest(d), nil
}

// resolve resolves ref's tag at the registry (a HEAD) and caches the
// digest under key, dated. Concurrent resolutions of one tag share one
// request.
func (e *Engine) resolve(ctx context.Context, exec *vouch.Executor, ref vouch.Reference, key string) (digest.Digest, error) {
	return e.resolveAs(ctx, key, exec, ref, key, false)
}

// resolveAs is resolve sharing its request with the calls of flightKey.
// With fetch, the tag is resolved by fetching its manifest (a GET), which
// the store keeps by digest, when the store can: for a resolution that a
// verification of the digest follows.
func (e *Engine) resolveAs(ctx context.Context, flightKey string, exec *vouch.Executor, ref vouch.Reference, key string, fetch bool) (digest.Digest, error) {
	return e.tags.Do(ctx, flightKey, 0, func(ctx context.Context) (digest.Digest, error) {
		ctx, cancel := context.WithTimeout(ctx, e.opts.VerifyTimeout)
		defer cancel()
		at := e.opts.Now()
		var desc ocispec.Descriptor
		var err error
		if fetch {
			desc, err = fetchResolve(ctx, exec, ref)
		} else {
			desc, err = exec.Resolve(ctx, ref)
		}
		if err != nil {
			return "", err
		}
		if e.opts.TagTTL > 0 {
			e.cache.Set(ctx, key, tagEntry(desc.Digest, at), max(e.opts.TagTTL, e.opts.TagMaxStale))
		}
		return desc.Digest, nil
	})
}

// fetchResolve resolves ref as exec.Resolve does, by fetching its
// manifest in the same request when ref names a tag and the store's
// repository can (vouch.FetchReferencer).
func fetchResolve(ctx context.Context, exec *vouch.Executor, ref vouch.Reference) (ocispec.Descriptor, error) {
	if exec.Store == nil || ref.Digest != "" {
		// A digest is resolved with a HEAD: that shows the request's
		// credentials reach it (Options.CredentialScope), where the
		// store would answer a fetch from content another scope read.
		return exec.Resolve(ctx, ref)
	}
	repo, err := exec.Store.Repository(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	fr, ok := repo.(vouch.FetchReferencer)
	if !ok {
		return exec.Resolve(ctx, ref)
	}
	desc, _, err := fr.FetchReference(ctx, ref.Version())
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := desc.Digest.Validate(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("registry returned a bad digest for %s: %w", ref, err)
	}
	if ref.Digest != "" && desc.Digest != ref.Digest {
		return ocispec.Descriptor{}, &vouch.DigestMismatchError{Expected: ref.Digest.String(), Actual: desc.Digest.String()}
	}
	return desc, nil
}

// refresh resolves ref's tag again in the background, unless a refresh of
// it runs already or failed less than TagTTL ago. The refresh keeps ctx's
// values (the request id, for logs), not its deadline.
func (e *Engine) refresh(ctx context.Context, exec *vouch.Executor, ref vouch.Reference, key string) {
	now := e.opts.Now()
	e.refreshMu.Lock()
	if next, ok := e.refreshing[key]; ok && now.Before(next) {
		e.refreshMu.Unlock()
		return
	}
	if len(e.refreshing) >= maxRefreshing {
		// Forget failures; running refreshes finish unhindered and at
		// worst one more starts for their tags.
		clear(e.refreshing)
	}
	e.refreshing[key] = now.Add(e.opts.VerifyTimeout) // it ends by then
	e.refreshMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.VerifyTimeout)
		defer cancel()
		if shared, ok := e.cache.(cache.Shared); ok && !e.claimRefresh(ctx, shared, key) {
			// Another replica refreshed the tag, or refreshes it now: look
			// for its result again after sharedRefreshWait.
			e.refreshMu.Lock()
			e.refreshing[key] = e.opts.Now().Add(sharedRefreshWait)
			e.refreshMu.Unlock()
			return
		}
		_, err := e.resolve(ctx, exec, ref, key)
		e.refreshMu.Lock()
		if err == nil {
			delete(e.refreshing, key)
		} else {
			e.refreshing[key] = e.opts.Now().Add(e.opts.TagTTL)
		}
		e.refreshMu.Unlock()
		if err != nil {
			e.opts.Logger.WarnContext(ctx, "could not refresh a cached tag; its digest is used until it is too old", "reference", ref.String(), "error", err.Error())
		}
		if h := e.opts.Hooks.OnTagRefresh; h != nil {
			h(err)
		}
	}()
}

// sharedRefreshWait is how long a replica that found another refreshing a
// tag waits before it looks for the result in the shared cache again
// (meanwhile it uses the digest it has, as while a refresh of its own
// runs).
const sharedRefreshWait = 250 * time.Millisecond

// claimRefresh reports whether this replica should refresh the tag cached
// under key, with a cache that replicas share: not when the shared entry
// is within TagTTL (another replica refreshed it; it is now cached here
// too), nor while another replica holds the tag's refresh claim. The claim
// lasts half of TagTTL: long enough for one resolution, short enough to
// have passed when the digest it writes is past TagTTL.
func (e *Engine) claimRefresh(ctx context.Context, shared cache.Shared, key string) bool {
	if data, ok := shared.GetShared(ctx, key); ok {
		if _, at, ok := parseTagEntry(data); ok && e.opts.Now().Sub(at) < e.opts.TagTTL {
			return false
		}
	}
	return shared.Claim(ctx, "refresh:"+key, e.opts.TagTTL/2)
}

// tagEntry is the cached form of a tag's digest resolved at at:
// "<digest> <unix milliseconds>".
func tagEntry(d digest.Digest, at time.Time) []byte {
	return strconv.AppendInt([]byte(d.String()+" "), at.UnixMilli(), 10)
}

// parseTagEntry reads a tagEntry; anything else (corrupt, or written by an
// older vouch without the date) is a miss.
func parseTagEntry(data []byte) (digest.Digest, time.Time, bool) {
	ds, ms, ok := strings.Cut(string(data), " ")
	if !ok {
		return "", time.Time{}, false
	}
	d, err := digest.Parse(ds)
	if err != nil {
		return "", time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return d, time.UnixMilli(n), true
}

// Resolve returns image pinned to its digest under the registry settings of
// namespace: for the mutating endpoints. A reference that already names a
// digest is returned as it is, without I/O.
func (e *Engine) Resolve(ctx context.Context, namespace, image string) (vouch.Reference, error) {
	ref, err := parse(image)
	if err != nil {
		return vouch.Reference{}, err
	}
	exec, _ := e.opts.Executor(ctx, namespace)
	if exec == nil {
		return vouch.Reference{}, fmt.Errorf("no executor for namespace %q", namespace)
	}
	return e.pin(ctx, exec, ref)
}
