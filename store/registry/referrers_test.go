package registry_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

// probeGate holds the first referrers API request back until tags
// referrers tag reads have gone out, then lets it go or, with fail set,
// fails it as a dropped connection would. overlapped records that the
// reads went out while the probe was held; a store that read the tag only
// after the probe's answer would never send them, and the gate would give
// up after a long wait (a safety net, not a measurement).
type probeGate struct {
	tags int
	fail bool

	mu         sync.Mutex
	seen       int
	probes     int
	allTags    chan struct{}
	overlapped bool
}

func newProbeGate(tags int, fail bool) *probeGate {
	return &probeGate{tags: tags, fail: fail, allTags: make(chan struct{})}
}

func (g *probeGate) before(kind string, r *http.Request) error {
	g.mu.Lock()
	switch kind {
	case "tag":
		g.seen++
		if g.seen == g.tags {
			close(g.allTags)
		}
		g.mu.Unlock()
		return nil
	case "referrers":
		g.probes++
		first := g.probes == 1
		g.mu.Unlock()
		if !first {
			return nil
		}
	default:
		g.mu.Unlock()
		return nil
	}
	select {
	case <-g.allTags:
		g.mu.Lock()
		g.overlapped = true
		g.mu.Unlock()
	case <-time.After(20 * time.Second):
	case <-r.Context().Done():
	}
	if g.fail {
		return errors.New("connection dropped (injected by the test)")
	}
	return nil
}

func (g *probeGate) tagsDuringProbe() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.overlapped
}

// discoverySubjects pushes n images to repositories discover/0 … discover/n-1
// of reg, each with two referrers, and returns them with their referrers.
// On a registry with the referrers API it also tags, in each repository, a
// decoy sha256-<hex> referrers index that lists another image: a listing
// taken from the tag there would be wrong.
func discoverySubjects(t *testing.T, reg *testbed.Registry, n int) (names []string, subjects []ocispec.Descriptor, refs [][]ocispec.Descriptor) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("discover/%d", i)
		p := testbed.NewPusher(t, reg.Host, name)
		subject, rs := pushSubject(t, p, 2, func(i int) string { return []string{sigType, sbomType}[i] })
		if reg.ReferrersAPI {
			decoy := p.Image("decoy", "decoy of "+name)
			p.Index("sha256-"+subject.Digest.Encoded(), decoy)
		}
		names, subjects, refs = append(names, name), append(subjects, subject), append(refs, rs)
	}
	return names, subjects, refs
}

// TestReferrersDiscovery lists the referrers of 1 and of 10 subjects, each
// in a repository of its own, all at once on a fresh Store, with the first
// referrers API request held back until every subject's referrers tag read
// has gone out. It shows that on a host whose referrers API support is not
// known the tag read does not wait for the probe, and that the subjects
// share one probe of the host. On distribution (no referrers API) that
// makes 1 probe and N tag reads, the fewest possible, and the listings are
// the tags'. On go-containerregistry (the referrers API), where a decoy
// tag lists something else, every listing is the API's: N API calls, the
// first of them the probe, and the tag reads thrown away. Once the host is
// known, a listing costs one request of the right kind.
func TestReferrersDiscovery(t *testing.T) {
	const most = 10
	for _, reg := range testbed.Both(t) {
		names, subjects, refs := discoverySubjects(t, reg, most)
		for _, n := range []int{1, most} {
			t.Run(fmt.Sprintf("%s/%d subjects", reg.Name, n), func(t *testing.T) {
				gate := newProbeGate(n, false)
				log := newRequestLog(gate.before)
				s := newStore(t, registry.Options{PlainHTTP: true, Transport: log})
				got, errs := listAtOnce(t, s, reg, names[:n], subjects[:n])
				if !gate.tagsDuringProbe() {
					t.Errorf("the %d referrers tag reads did not all go out while the referrers API probe was in flight", n)
				}
				for i := range n {
					if errs[i] != nil {
						t.Fatalf("%s: %v", names[i], errs[i])
					}
					if !slices.Equal(digests(got[i]), digests(refs[i])) {
						t.Errorf("%s: listed %v, want the pushed referrers %v", names[i], digests(got[i]), digests(refs[i]))
					}
				}
				wantAPI := 1
				if reg.ReferrersAPI {
					wantAPI = n
				}
				if got := log.count("referrers"); got != wantAPI {
					t.Errorf("%d referrers API requests, want %d", got, wantAPI)
				}
				if got := log.count("tag"); got != n {
					t.Errorf("%d referrers tag reads, want %d", got, n)
				}
				if got := log.count("other"); got != 0 {
					t.Errorf("%d other requests, want none", got)
				}

				// The host is known now: one request, of the right kind.
				api, tag := log.count("referrers"), log.count("tag")
				if got, err := listReferrers(t, open(t, s, reg.Host, names[0]), subjects[0], ""); err != nil || !slices.Equal(digests(got), digests(refs[0])) {
					t.Fatalf("warm listing = %v, %v; want %v", digests(got), err, digests(refs[0]))
				}
				api, tag = log.count("referrers")-api, log.count("tag")-tag
				if reg.ReferrersAPI && (api != 1 || tag != 0) || !reg.ReferrersAPI && (api != 0 || tag != 1) {
					t.Errorf("warm listing: %d referrers API requests and %d tag reads", api, tag)
				}
			})
		}
	}
}

// TestReferrersProbeFailure drops the first probe of a fresh distribution
// host while 10 subjects wait for it: the subject whose probe it was gets
// the error, and one of the others probes again, since a failure teaches
// nothing about the host; the other 9 listings are the tags'.
func TestReferrersProbeFailure(t *testing.T) {
	const n = 10
	reg := testbed.Distribution(t)
	names, subjects, refs := discoverySubjects(t, reg, n)
	gate := newProbeGate(n, true)
	log := newRequestLog(gate.before)
	s := newStore(t, registry.Options{PlainHTTP: true, Transport: log, MaxRetries: -1})
	got, errs := listAtOnce(t, s, reg, names, subjects)
	failed := 0
	for i := range n {
		if errs[i] != nil {
			failed++
			continue
		}
		if !slices.Equal(digests(got[i]), digests(refs[i])) {
			t.Errorf("%s: listed %v, want %v", names[i], digests(got[i]), digests(refs[i]))
		}
	}
	if failed != 1 {
		t.Errorf("%d listings failed, want 1 (the one whose probe was dropped): %v", failed, errs)
	}
	if got := log.count("referrers"); got != 2 {
		t.Errorf("%d referrers API requests, want 2", got)
	}
}

// TestReferrersDiscoveryOneSlot lists the referrers of 10 subjects at once
// on a fresh distribution host with one request in flight allowed: the tag
// reads sent beside the probe take slots of their own, and the subjects
// waiting for the probe hold none, so every listing completes.
func TestReferrersDiscoveryOneSlot(t *testing.T) {
	const n = 10
	reg := testbed.Distribution(t)
	names, subjects, refs := discoverySubjects(t, reg, n)
	log := newRequestLog(nil)
	s := newStore(t, registry.Options{PlainHTTP: true, Transport: log, MaxConcurrency: 1})
	got, errs := listAtOnce(t, s, reg, names, subjects)
	for i := range n {
		if errs[i] != nil || !slices.Equal(digests(got[i]), digests(refs[i])) {
			t.Errorf("%s: listed %v, %v; want %v", names[i], digests(got[i]), errs[i], digests(refs[i]))
		}
	}
	if got := log.count("referrers"); got != 1 {
		t.Errorf("%d referrers API requests, want 1", got)
	}
}

// listAtOnce lists the referrers of every subject, each in its repository
// of s, all at once.
func listAtOnce(t *testing.T, s *registry.Store, reg *testbed.Registry, names []string, subjects []ocispec.Descriptor) ([][]ocispec.Descriptor, []error) {
	t.Helper()
	got, errs := make([][]ocispec.Descriptor, len(names)), make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		repo := open(t, s, reg.Host, name)
		wg.Go(func() { got[i], errs[i] = listReferrers(t, repo, subjects[i], "") })
	}
	wg.Wait()
	return got, errs
}
