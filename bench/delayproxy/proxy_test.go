package delayproxy_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"

	"github.com/vouch-project/vouch/bench/delayproxy"
)

func TestClassify(t *testing.T) {
	for path, want := range map[string]delayproxy.Kind{
		"/v2/":                           delayproxy.KindBase,
		"/v2/a/b/manifests/v1":           delayproxy.KindManifest,
		"/v2/a/manifests/sha256-abc.sig": delayproxy.KindManifest,
		"/v2/a/blobs/sha256:abc":         delayproxy.KindBlob,
		"/v2/a/blobs/uploads/":           delayproxy.KindBlob,
		"/v2/a/b/c/referrers/sha256:abc": delayproxy.KindReferrers,
		"/v2/a/tags/list":                delayproxy.KindTags,
		"/v2/manifests/tags/list":        delayproxy.KindTags,
		"/healthz":                       delayproxy.KindOther,
		"/v2/a/unknown":                  delayproxy.KindOther,
	} {
		if got := delayproxy.Classify(path); got != want {
			t.Errorf("Classify(%q) = %s, want %s", path, got, want)
		}
	}
}

// registry serves go-containerregistry's in-memory registry, a real
// registry, behind a proxy with opts.
func registry(t *testing.T, opts delayproxy.Options) *delayproxy.Server {
	t.Helper()
	reg := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	opts.Target, _ = url.Parse(reg.URL)
	p, err := delayproxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := delayproxy.Listen(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func get(t *testing.T, method, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestDelayAndCounts(t *testing.T) {
	const delay = 30 * time.Millisecond
	s := registry(t, delayproxy.Options{Delay: delay, Log: true})
	base := "http://" + s.Host
	start := time.Now()
	if resp := get(t, http.MethodGet, base+"/v2/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s", resp.Status)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("GET /v2/ took %v, less than the delay %v", took, delay)
	}
	get(t, http.MethodHead, base+"/v2/demo/manifests/v1") // 404: still counted
	get(t, http.MethodGet, base+"/v2/demo/blobs/sha256:"+"0000000000000000000000000000000000000000000000000000000000000000")
	c := s.Counts()
	if c.Total != 3 || c.ByKind[delayproxy.KindBase] != 1 || c.ByKind[delayproxy.KindManifest] != 1 || c.ByKind[delayproxy.KindBlob] != 1 {
		t.Errorf("counts = %+v", c)
	}
	if c.ByMethodKind["HEAD manifest"] != 1 {
		t.Errorf("by method and kind = %v", c.ByMethodKind)
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[1].Status != http.StatusNotFound || reqs[1].End.Sub(reqs[1].Start) < delay {
		t.Errorf("request log = %+v", reqs)
	}
	s.Reset()
	if c := s.Counts(); c.Total != 0 {
		t.Errorf("after Reset: %+v", c)
	}
}

func TestTooManyRequests(t *testing.T) {
	s := registry(t, delayproxy.Options{TooManyRate: 1, RetryAfter: 1500 * time.Millisecond})
	resp := get(t, http.MethodGet, "http://"+s.Host+"/v2/")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("got %s, Retry-After %q; want 429 with Retry-After 2", resp.Status, resp.Header.Get("Retry-After"))
	}
	if c := s.Counts(); c.TooMany != 1 || c.Total != 1 {
		t.Errorf("counts = %+v", c)
	}
}

func TestOptionsValidated(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	for name, o := range map[string]delayproxy.Options{
		"no target":      {},
		"negative delay": {Target: u, Delay: -1},
		"rate above 1":   {Target: u, TooManyRate: 1.5},
	} {
		if _, err := delayproxy.New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
