package engine

import (
	"context"
	"fmt"

	"github.com/vouch-project/vouch"
)

// This file holds Refresh: verification that ignores what is cached, for
// pre-verification (server/preverify), when vouch learns that an image or
// what is attached to it changed.

// Refresh verifies image again under namespace's policy and caches the
// verdict, as Verify does, but without looking at the cache first: a tag
// is resolved at the registry (re-pinned: the cached digest is replaced),
// and the cached verdict on the digest, a denial as well as an allow, is
// replaced by the new one. It is for registry events and workload
// watching: a signature just attached to an image turns its cached denial
// into an allow at once, without waiting for the denial's TTL. A verdict
// that cannot be cached (undecided) leaves the cached one in place: the
// server fails closed either way.
//
// A subject that no policy scope covers is screened as in Verify, before
// any request. Refresh does not report to Hooks.OnAnswer: no caller is
// answered.
func (e *Engine) Refresh(ctx context.Context, namespace, image string) (*vouch.Report, error) {
	ref, err := parse(image)
	if err != nil {
		return undecided(image, image, err), err
	}
	exec, hash := e.opts.Executor(ctx, namespace)
	if exec == nil {
		err := fmt.Errorf("no executor for namespace %q", namespace)
		return undecided(ref.String(), ref.String(), err), err
	}
	if r, ok := exec.Screen(ctx, ref); ok {
		return r, nil
	}
	pinned := ref
	if ref.Digest == "" {
		key := "tag:" + ref.Name() + ":" + ref.Tag
		if e.opts.CredentialScope != nil {
			key = "tag:" + e.opts.CredentialScope(ctx, ref.Registry) + ":" + ref.Name() + ":" + ref.Version()
		}
		// A flight of its own: a resolution that started before the
		// event could return the digest the tag had before it.
		d, err := e.resolveAs(ctx, "refresh:"+key, exec, ref, key, true)
		if err != nil {
			err = fmt.Errorf("resolve %s: %w", ref, err)
			return undecided(ref.String(), ref.String(), err), err
		}
		pinned = ref.WithDigest(d)
	}
	key := verdictKey(hash, pinned)
	v, err := e.verdicts.Do(ctx, "refresh:"+key, 0, func(ctx context.Context) (verified, error) {
		return e.run(ctx, exec, key, pinned)
	})
	if v.r == nil {
		if err == nil {
			err = fmt.Errorf("verify %s: no report", pinned)
		}
		return undecided(ref.String(), pinned.String(), err), err
	}
	return personal(v.r, ref.String(), ref, pinned), err
}

// ResolveUncached resolves image at the registry under namespace's
// registry settings, without the tag cache and without caching what it
// finds, and returns the digest: for pre-verification, which waits for a
// registry to move a tag it notified about. A subject that no policy
// scope covers is refused before any request.
func (e *Engine) ResolveUncached(ctx context.Context, namespace, image string) (string, error) {
	ref, err := parse(image)
	if err != nil {
		return "", err
	}
	exec, _ := e.opts.Executor(ctx, namespace)
	if exec == nil {
		return "", fmt.Errorf("no executor for namespace %q", namespace)
	}
	if r, ok := exec.Screen(ctx, ref); ok {
		return "", fmt.Errorf("%s: %s", ref, r.Reason)
	}
	desc, err := exec.Resolve(ctx, ref)
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// HasVerdict reports whether a verdict on image, a reference by digest, is
// cached under namespace's policy: for pre-verification, which replaces
// the verdict of every policy scope that has one cached when an image
// changes. It makes no registry request and is not counted in
// Hooks.OnCache (no caller is answered); a reference by tag is false.
func (e *Engine) HasVerdict(ctx context.Context, namespace, image string) bool {
	ref, err := parse(image)
	if err != nil || ref.Digest == "" {
		return false
	}
	exec, hash := e.opts.Executor(ctx, namespace)
	if exec == nil {
		return false
	}
	_, ok := e.cache.Get(ctx, verdictKey(hash, ref))
	return ok
}
