package vouch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

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
