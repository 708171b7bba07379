package registry_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	vouch "github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

// TestMaxReferrerPages lists 70 referrers served in pages of 20 (4 pages)
// under several page limits.
func TestMaxReferrerPages(t *testing.T) {
	var pages atomic.Int64
	reg := testbed.GGCR(t, paginate(20, &pages))
	subject, _ := pushSubject(t, testbed.NewPusher(t, reg.Host, "paged"), 70, func(int) string { return sigType })
	for _, tc := range []struct {
		maxPages  int
		wantLimit bool
	}{{3, true}, {1, true}, {4, false}, {0, false}} {
		s := newStore(t, registry.Options{PlainHTTP: true, Limits: vouch.Limits{MaxReferrerPages: tc.maxPages}})
		pages.Store(0)
		got, err := listReferrers(t, open(t, s, reg.Host, "paged"), subject, "")
		var le *vouch.LimitError
		switch {
		case tc.wantLimit && !(errors.As(err, &le) && le.Limit == "max-referrer-pages"):
			t.Errorf("MaxReferrerPages=%d: err = %v, want a LimitError on max-referrer-pages", tc.maxPages, err)
		case tc.wantLimit && pages.Load() > int64(tc.maxPages):
			t.Errorf("MaxReferrerPages=%d: %d pages requested", tc.maxPages, pages.Load())
		case !tc.wantLimit && (err != nil || len(got) != 70):
			t.Errorf("MaxReferrerPages=%d: %d referrers, %v; want 70", tc.maxPages, len(got), err)
		}
	}
}

// TestLimitsBeforeRequest checks that content whose descriptor is over a
// limit is refused before any request is made.
func TestLimitsBeforeRequest(t *testing.T) {
	requests := newCounter("")
	reg := testbed.GGCR(t, requests.wrap)
	p := testbed.NewPusher(t, reg.Host, "big")
	blob := p.Blob("application/octet-stream", bytes.Repeat([]byte("x"), 100))
	manifest := p.Image("v1", strings.Repeat("layer", 50))
	s := newStore(t, registry.Options{PlainHTTP: true, Limits: vouch.Limits{MaxBlobBytes: 99, MaxManifestBytes: manifest.Size - 1}})
	repo := open(t, s, reg.Host, "big")
	for _, tc := range []struct {
		name  string
		desc  ocispec.Descriptor
		limit string
	}{
		{"blob", blob, "max-blob-bytes"},
		{"manifest", manifest, "max-manifest-bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requests.reset()
			_, err := repo.Fetch(t.Context(), tc.desc)
			var le *vouch.LimitError
			if !errors.As(err, &le) || le.Limit != tc.limit || le.Value != tc.desc.Size {
				t.Fatalf("err = %v, want a LimitError on %s", err, tc.limit)
			}
			if !errors.Is(err, vouch.ErrLimitExceeded) {
				t.Errorf("errors.Is(err, ErrLimitExceeded) = false")
			}
			if n := requests.total(); n != 0 {
				t.Errorf("%d requests made, want none", n)
			}
		})
	}
	t.Run("manifest by tag", func(t *testing.T) {
		_, _, err := repo.(vouch.FetchReferencer).FetchReference(t.Context(), "v1")
		var le *vouch.LimitError
		if !errors.As(err, &le) || le.Limit != "max-manifest-bytes" {
			t.Fatalf("err = %v, want a LimitError on max-manifest-bytes", err)
		}
	})
}

// TestDigestMismatch serves manifests whose bytes are not the ones their
// digest names, as a lying registry or a corrupting proxy would: the
// wrapper alters the body of every manifest GET and keeps the registry's
// Docker-Content-Digest header.
func TestDigestMismatch(t *testing.T) {
	for _, alter := range []struct {
		name string
		fn   func([]byte) []byte
	}{
		{"same length", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1)
		}},
		{"longer", func(b []byte) []byte { return append(b, ' ') }},
	} {
		t.Run(alter.name, func(t *testing.T) {
			var on atomic.Bool
			reg := testbed.GGCR(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !on.Load() || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/manifests/") {
						h.ServeHTTP(w, r)
						return
					}
					rec := record(h, r)
					replayTo(w, rec, alter.fn(rec.Body.Bytes()))
				})
			})
			subject := testbed.NewPusher(t, reg.Host, "lies").Image("v1", "honest layer")
			on.Store(true)
			s := newStore(t, registry.Options{PlainHTTP: true})
			repo := open(t, s, reg.Host, "lies")
			fr := repo.(vouch.FetchReferencer)
			for _, tc := range []struct {
				name string
				call func() error
			}{
				{"Fetch", func() error { _, err := repo.Fetch(t.Context(), subject); return err }},
				{"FetchReference digest", func() error { _, _, err := fr.FetchReference(t.Context(), subject.Digest.String()); return err }},
				{"FetchReference tag", func() error { _, _, err := fr.FetchReference(t.Context(), "v1"); return err }},
			} {
				err := tc.call()
				var dm *vouch.DigestMismatchError
				if !errors.As(err, &dm) {
					t.Errorf("%s: err = %v, want a DigestMismatchError", tc.name, err)
					continue
				}
				if dm.Expected != subject.Digest.String() || dm.Actual == dm.Expected || digest.Digest(dm.Actual).Validate() != nil {
					t.Errorf("%s: %v", tc.name, dm)
				}
			}
		})
	}
}
