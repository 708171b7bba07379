package registry_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	vouch "github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

const (
	sigType  = "application/vnd.example.signature"
	sbomType = "application/vnd.example.sbom"
)

// TestRepository reads an image and its 70 referrers from both discovery
// paths: distribution (no referrers API: the tag-schema fallback) and
// go-containerregistry (the referrers API, paginated by a wrapper into
// pages of 20 since ggcr does not paginate).
func TestRepository(t *testing.T) {
	var pages atomic.Int64
	regs := []*testbed.Registry{testbed.Distribution(t), testbed.GGCR(t, paginate(20, &pages))}
	for _, reg := range regs {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "demo/app")
			subject, refs := pushSubject(t, p, 70, func(i int) string {
				if i%2 == 0 {
					return sigType
				}
				return sbomType
			})
			s := newStore(t, registry.Options{PlainHTTP: true})
			repo := open(t, s, reg.Host, "demo/app")
			ctx := t.Context()

			t.Run("resolve", func(t *testing.T) {
				for _, reference := range []string{"v1", subject.Digest.String()} {
					desc, err := repo.Resolve(ctx, reference)
					if err != nil {
						t.Fatalf("Resolve(%s): %v", reference, err)
					}
					if desc.Digest != subject.Digest || desc.Size != subject.Size || desc.MediaType != subject.MediaType {
						t.Errorf("Resolve(%s) = %+v, want %+v", reference, desc, subject)
					}
				}
			})

			t.Run("fetch reference", func(t *testing.T) {
				fr := repo.(vouch.FetchReferencer)
				for _, reference := range []string{"v1", subject.Digest.String()} {
					desc, data, err := fr.FetchReference(ctx, reference)
					if err != nil {
						t.Fatalf("FetchReference(%s): %v", reference, err)
					}
					if desc.Digest != subject.Digest || digest.FromBytes(data) != subject.Digest {
						t.Errorf("FetchReference(%s) = %s, content %s; want %s", reference, desc.Digest, digest.FromBytes(data), subject.Digest)
					}
				}
			})

			t.Run("fetch", func(t *testing.T) {
				data, err := repo.Fetch(ctx, subject)
				if err != nil {
					t.Fatal(err)
				}
				var m ocispec.Manifest
				if err := json.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				for _, blob := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
					b, err := repo.Fetch(ctx, blob)
					if err != nil {
						t.Fatalf("Fetch(%s): %v", blob.Digest, err)
					}
					if digest.FromBytes(b) != blob.Digest {
						t.Errorf("Fetch(%s) returned content of %s", blob.Digest, digest.FromBytes(b))
					}
				}
			})

			t.Run("referrers", func(t *testing.T) {
				pages.Store(0)
				got, err := listReferrers(t, repo, subject, "")
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(digests(got), digests(refs)) {
					t.Fatalf("listed %d referrers, want the %d pushed", len(got), len(refs))
				}
				if reg.ReferrersAPI && pages.Load() != 4 {
					t.Errorf("served %d pages, want 4 (70 referrers in pages of 20)", pages.Load())
				}
			})

			if !reg.ReferrersAPI {
				// ggcr reports a referrer's artifactType from its config's
				// media type, so filtering by it only works on the tag
				// schema, whose index oras-go wrote correctly.
				t.Run("referrers artifactType hint", func(t *testing.T) {
					got, err := listReferrers(t, repo, subject, sbomType)
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != 35 {
						t.Fatalf("listed %d referrers of type %s, want 35", len(got), sbomType)
					}
				})
			}

			t.Run("not found", func(t *testing.T) {
				missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("missing"), Size: 7}
				_, err1 := repo.Resolve(ctx, "no-such-tag")
				_, err2 := repo.Fetch(ctx, missing)
				_, _, err3 := repo.(vouch.FetchReferencer).FetchReference(ctx, missing.Digest.String())
				_, err4 := repo.Fetch(ctx, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: missing.Digest, Size: 7})
				for i, err := range []error{err1, err2, err3, err4} {
					if !errors.Is(err, vouch.ErrNotFound) {
						t.Errorf("case %d: err = %v, want ErrNotFound", i+1, err)
					}
				}
				got, err := listReferrers(t, repo, missing, "")
				if err != nil || len(got) != 0 {
					t.Errorf("referrers of a missing manifest = %v, %v; want none", got, err)
				}
			})
		})
	}
}

// TestRepositoryRejectsLayout checks that the registry store does not open
// OCI layout references.
func TestRepositoryRejectsLayout(t *testing.T) {
	s := newStore(t, registry.Options{})
	ref, err := vouch.ParseReference("oci-layout:/tmp/x:v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Repository(t.Context(), ref); err == nil || !strings.Contains(err.Error(), "layout") {
		t.Fatalf("Repository(layout) err = %v, want an error about the layout", err)
	}
}

// TestReferrersCapabilityShared checks that what one repository learned
// about the referrers API serves every repository of the host: on
// distribution the first listing probes the API (404) then reads the tag,
// the listing in a second repository reads the tag only. Requests are
// counted with Options.OnResponse.
func TestReferrersCapabilityShared(t *testing.T) {
	reg := testbed.Distribution(t)
	subjects := map[string]ocispec.Descriptor{}
	for _, name := range []string{"one", "two"} {
		subject, _ := pushSubject(t, testbed.NewPusher(t, reg.Host, name), 1, func(int) string { return sigType })
		subjects[name] = subject
	}
	var responses atomic.Int64
	s := newStore(t, registry.Options{PlainHTTP: true, OnResponse: func(host, method string, status int) {
		if host == reg.Host {
			responses.Add(1)
		}
	}})
	for _, tc := range []struct {
		repo string
		want int64
	}{{"one", 2}, {"two", 1}, {"one", 1}} {
		responses.Store(0)
		got, err := listReferrers(t, open(t, s, reg.Host, tc.repo), subjects[tc.repo], "")
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: referrers = %d, %v; want 1", tc.repo, len(got), err)
		}
		if n := responses.Load(); n != tc.want {
			t.Errorf("%s: %d requests, want %d", tc.repo, n, tc.want)
		}
	}
}

// TestOptionsValidated checks that New names the option it refuses.
func TestOptionsValidated(t *testing.T) {
	for _, tc := range []struct {
		field string
		opts  registry.Options
	}{
		{"Limits.MaxManifestBytes", registry.Options{Limits: vouch.Limits{MaxManifestBytes: -1}}},
		{"Limits.MaxBlobBytes", registry.Options{Limits: vouch.Limits{MaxBlobBytes: -1}}},
		{"Limits.MaxReferrerPages", registry.Options{Limits: vouch.Limits{MaxReferrerPages: -1}}},
		{"MaxConcurrency", registry.Options{MaxConcurrency: -1}},
		{"MaxRetryWait", registry.Options{MaxRetryWait: -1}},
		{"TagTTL", registry.Options{TagTTL: -1}},
		{"InsecureRegistries", registry.Options{InsecureRegistries: []string{"https://example.com/"}}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			if _, err := registry.New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want one naming %s", err, tc.field)
			}
		})
	}
}
