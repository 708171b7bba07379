package registry_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	vouch "github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

// newStore returns a Store over plain HTTP (the testbed registries listen
// on 127.0.0.1 without TLS) that reads no Docker config of the machine's.
func newStore(t testing.TB, opts registry.Options) *registry.Store {
	t.Helper()
	if opts.DockerConfig == "" {
		opts.DockerConfig = writeFile(t, "config.json", "{}")
	}
	s, err := registry.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// open returns the repository HOST/NAME of s.
func open(t testing.TB, s *registry.Store, host, name string) vouch.Repository {
	t.Helper()
	ref, err := vouch.ParseReference(host + "/" + name + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := s.Repository(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// listReferrers collects a whole referrers listing.
func listReferrers(t testing.TB, repo vouch.Repository, subject ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	t.Helper()
	var all []ocispec.Descriptor
	err := repo.Referrers(t.Context(), subject, artifactType, func(page []ocispec.Descriptor) error {
		all = append(all, page...)
		return nil
	})
	return all, err
}

// The wrappers below are the only stand-ins in these tests: each wraps the
// real go-containerregistry handler (testbed.GGCR) and injects one fault or
// measurement the way a misbehaving registry or proxy would.

// counter counts the requests whose path contains a substring (all when
// empty), by method.
type counter struct {
	substr string
	mu     sync.Mutex
	n      map[string]int
}

func newCounter(substr string) *counter { return &counter{substr: substr, n: map[string]int{}} }

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, c.substr) {
			c.mu.Lock()
			c.n[r.Method]++
			c.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (c *counter) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[method]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

func (c *counter) reset() {
	c.mu.Lock()
	c.n = map[string]int{}
	c.mu.Unlock()
}

// record runs h on r and returns what it answered.
func record(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// replayTo writes a recorded answer, with body in place of the recorded
// one and a Content-Length to match.
func replayTo(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// paginate splits ggcr's referrers index (which it never paginates) into
// pages of size entries, sorted by digest, linked by "Link: <…>; rel=next"
// as the distribution spec describes. pages counts the pages served.
func paginate(size int, pages *atomic.Int64) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/referrers/") {
				h.ServeHTTP(w, r)
				return
			}
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			inner := r.Clone(r.Context())
			inner.URL.RawQuery = ""
			rec := record(h, inner)
			var index ocispec.Index
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &index) != nil {
				replayTo(w, rec, rec.Body.Bytes())
				return
			}
			slices.SortFunc(index.Manifests, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
			all := index.Manifests
			from, to := min(page*size, len(all)), min((page+1)*size, len(all))
			index.Manifests = all[from:to]
			if to < len(all) {
				w.Header().Set("Link", fmt.Sprintf(`<%s?page=%d>; rel="next"`, r.URL.Path, page+1))
			}
			body, _ := json.Marshal(index)
			pages.Add(1)
			replayTo(w, rec, body)
		})
	}
}

// pushSubject pushes a small image tagged "v1" with n referrers attached,
// returning the image and the referrers' descriptors.
func pushSubject(t testing.TB, p *testbed.Pusher, n int, artifactType func(i int) string) (ocispec.Descriptor, []ocispec.Descriptor) {
	t.Helper()
	subject := p.Image("v1", "layer of "+p.Repo.Reference.Repository)
	var refs []ocispec.Descriptor
	for i := range n {
		refs = append(refs, p.Attach(subject, artifactType(i), "application/vnd.example.data", []byte(fmt.Sprintf("referrer %d", i))))
	}
	return subject, refs
}

func digests(ds []ocispec.Descriptor) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Digest.String()
	}
	slices.Sort(out)
	return out
}

// requestLog is a Store's base transport in tests: a real http.Transport
// that counts the requests going out by kind ("referrers" for the referrers
// API, "tag" for a sha256-<hex> referrers tag read, "other") and calls
// before, when set, as each one goes out. before may hold a request back
// (to see what else goes out meanwhile) or fail it (as a broken connection
// would).
type requestLog struct {
	base   http.RoundTripper
	before func(kind string, r *http.Request) error

	mu sync.Mutex
	n  map[string]int
}

func newRequestLog(before func(kind string, r *http.Request) error) *requestLog {
	return &requestLog{base: http.DefaultTransport.(*http.Transport).Clone(), before: before, n: map[string]int{}}
}

func requestKind(r *http.Request) string {
	switch {
	case strings.Contains(r.URL.Path, "/referrers/"):
		return "referrers"
	case strings.Contains(r.URL.Path, "/manifests/sha256-"):
		return "tag"
	}
	return "other"
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	kind := requestKind(r)
	l.mu.Lock()
	l.n[kind]++
	l.mu.Unlock()
	if l.before != nil {
		if err := l.before(kind, r); err != nil {
			return nil, err
		}
	}
	return l.base.RoundTrip(r)
}

func (l *requestLog) count(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[kind]
}
