package preverify

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
)

// envelope is a notification as distribution v3.1.2 posts it (its
// notifications.Envelope marshalled with MarshalIndent), trimmed of
// nothing vouch reads.
const envelope = `{
   "events": [
      {
         "id": "1", "timestamp": "2026-12-07T13:00:00Z", "action": "push",
         "target": {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111", "size": 500, "length": 500,
            "repository": "team/app", "url": "http://127.0.0.1:5000/v2/team/app/manifests/sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "tag": "sha256-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
         "request": {"id": "r1", "addr": "127.0.0.1:40000", "host": "registry.example:5000", "method": "PUT", "useragent": "notation-go"},
         "actor": {}, "source": {"addr": "host:5000", "instanceID": "i"}
      },
      {"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222", "repository": "team/app", "tag": "v2"}, "request": {"host": "registry.example:5000"}},
      {"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333", "repository": "team/app", "tag": "sha256-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.sig"}, "request": {"host": "registry.example:5000"}},
      {"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444", "repository": "team/app"}, "request": {"host": "registry.example:5000"}},
      {"action": "pull", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "team/app", "tag": "v1"}, "request": {"host": "registry.example:5000"}},
      {"action": "push", "target": {"mediaType": "application/octet-stream", "digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555", "repository": "team/app"}, "request": {"host": "registry.example:5000"}},
      {"action": "delete", "target": {"repository": "team/app", "tag": "old"}, "request": {"host": "registry.example:5000"}},
      {"action": "push", "target": {"repository": "team/app", "tag": "v2"}, "request": {"host": "registry.example:5000"}},
      {"action": "push", "target": {"repository": "team/app", "tag": "v3"}}
   ]
}`

func TestParseEnvelope(t *testing.T) {
	jobs, ignored, err := ParseEnvelope([]byte(envelope))
	if err != nil {
		t.Fatal(err)
	}
	var images, awaits []string
	for _, j := range jobs {
		images = append(images, j.Image)
		awaits = append(awaits, j.Await+"="+j.AwaitDigest)
	}
	wantAwaits := []string{
		"registry.example:5000/team/app:sha256-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=sha256:1111111111111111111111111111111111111111111111111111111111111111",
		"registry.example:5000/team/app:v2=sha256:2222222222222222222222222222222222222222222222222222222222222222",
		"registry.example:5000/team/app:sha256-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.sig=sha256:3333333333333333333333333333333333333333333333333333333333333333",
	}
	if !slices.Equal(awaits, wantAwaits) {
		t.Errorf("awaits %q\nwant %q", awaits, wantAwaits)
	}
	want := []string{
		"registry.example:5000/team/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"registry.example:5000/team/app:v2",
		"registry.example:5000/team/app@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	}
	// push by digest, pull, blob, delete, and one without a host.
	if !slices.Equal(images, want) || ignored != 5 {
		t.Fatalf("images %q, ignored %d\nwant %q, 5", images, ignored, want)
	}
	for _, bad := range []string{``, `[]`, `{"events": 3}`, `{"events":[` + strings.Repeat(`{},`, MaxEvents) + `{}]}`} {
		if _, _, err := ParseEnvelope([]byte(bad)); err == nil {
			t.Errorf("%.40q: no error", bad)
		}
	}
}

func TestParseSubjects(t *testing.T) {
	for _, tc := range []struct {
		body string
		want []string
		err  string
	}{
		{`{"subject":"registry.example/app:v1"}`, []string{"registry.example/app:v1"}, ""},
		{`{"subject":"registry.example/app:v1","subjects":["registry.example/b@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],"namespace":"team"}`,
			[]string{"registry.example/app:v1", "registry.example/b@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, ""},
		{`{}`, nil, "no \"subject\""},
		{`{"subjects":["oci-layout:/etc"]}`, nil, "OCI layout"},
		{`{"subject":"Not A Reference"}`, nil, "subject \"Not A Reference\""},
		{`{"subject":"registry.example/app:v1","extra":1}`, nil, "unknown field"},
	} {
		_, images, err := ParseSubjects([]byte(tc.body))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(images, tc.want) {
			t.Errorf("%s: %q, %v", tc.body, images, err)
		}
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ content, err string }{
		{"  0123456789abcdef0123\n", ""},
		{"short\n", "at least 16"},
		{"0123456789abcdef 0123", "white space"},
		{strings.Repeat("x", 5000), "at most 4096"},
	} {
		path := filepath.Join(dir, "token")
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		tok, err := ReadToken(path)
		if tc.err == "" && (err != nil || tok != strings.TrimSpace(tc.content)) {
			t.Errorf("%q: %q, %v", tc.content, tok, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: error %v, want %q", tc.content, err, tc.err)
		}
	}
}

// recorder is a Verify function that records its calls and holds each
// until release is closed: a stand-in for the engine, whose own
// behaviour server/engine's tests and cmd/vouch's end-to-end test cover;
// here only the queue's bounds are under test.
type recorder struct {
	mu       sync.Mutex
	calls    []string
	running  map[string]int // by registry
	maxByReg map[string]int
	release  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{running: map[string]int{}, maxByReg: map[string]int{}, release: make(chan struct{})}
}

func (r *recorder) verify(ctx context.Context, ns, image string) (*vouch.Report, error) {
	host := registryOf(image)
	r.mu.Lock()
	r.calls = append(r.calls, ns+"|"+image)
	r.running[host]++
	r.maxByReg[host] = max(r.maxByReg[host], r.running[host])
	r.mu.Unlock()
	select {
	case <-r.release:
	case <-ctx.Done():
	}
	r.mu.Lock()
	r.running[host]--
	r.mu.Unlock()
	return &vouch.Report{Verdict: vouch.Allowed}, nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// TestQueueBounds: a flood of jobs is bounded (queue size, duplicates
// merged, drops counted), never blocks the caller, and runs at most
// PerRegistry verifications per registry.
func TestQueueBounds(t *testing.T) {
	rec := newRecorder()
	results := map[string]int{}
	var mu sync.Mutex
	q, err := NewQueue(QueueOptions{Verify: rec.verify, MaxQueued: 10, Rate: 1000, PerRegistry: 2, MaxWorkers: 3,
		OnEnqueue: func(_, result string) { mu.Lock(); results[result]++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = q.Start(ctx) }()

	start := time.Now()
	for i := range 5000 {
		host := []string{"a.example", "b.example"}[i%2]
		q.Enqueue(Job{Image: host + "/app:" + string(rune('a'+i%26)) + "x"})
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("5000 Enqueue calls took %s: they must not wait for verifications", elapsed)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rec.count() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	got := results[Queued] + results[Duplicate] + results[Dropped]
	queued, dup := results[Queued], results[Duplicate]
	mu.Unlock()
	if got != 5000 || dup == 0 || queued > 10+3+3 {
		t.Fatalf("results %v", results)
	}
	if q.Len() > 10 {
		t.Fatalf("%d jobs waiting, more than MaxQueued", q.Len())
	}
	close(rec.release)
	// Until every job queued is verified: a job taken from the queue may
	// still wait for the rate limiter, and the cancel below would drop it.
	deadline = time.Now().Add(5 * time.Second)
	for (q.Len() > 0 || rec.count() < queued) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for host, m := range rec.maxByReg {
		if m > 2 {
			t.Errorf("%s: %d verifications at once, more than PerRegistry", host, m)
		}
	}
	if len(rec.calls) != queued {
		t.Errorf("%d verifications for %d jobs queued", len(rec.calls), queued)
	}
}

// TestHandler: authentication, body bound, answers.
func TestHandler(t *testing.T) {
	rec := newRecorder()
	close(rec.release)
	q, _ := NewQueue(QueueOptions{Verify: rec.verify, MaxQueued: 2, Rate: 1000})
	h, err := NewHandler(HandlerOptions{Queue: q, Token: "0123456789abcdef-token", MaxBodyBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(path, token, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	tok := "0123456789abcdef-token"
	for _, tc := range []struct {
		path, token, body string
		code              int
		want              string
	}{
		{"/events/v1/registry", "", envelope, 401, "bearer token"},
		{"/events/v1/registry", "0123456789abcdef-tokeN", envelope, 401, "bearer token"},
		{"/events/v1/registry", tok, strings.Repeat(" ", 5000), 413, "larger than 4096"},
		{"/events/v1/registry", tok, "{", 400, "not a registry notification"},
		{"/events/v1/registry", tok, envelope, 202, `{"queued":2,"duplicate":0,"dropped":1,"ignored":5}`},
		{"/events/v1/subjects", tok, `{"subject":"r.example/x:1"}`, 429, `"dropped":1`},
		{"/events/v1/subjects", tok, `{"subject":"nope nope"}`, 400, "subject"},
		{"/events/v1/other", tok, `{}`, 404, ""},
	} {
		code, body := post(tc.path, tc.token, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s %.20q: %d %s, want %d %s", tc.path, tc.body, code, body, tc.code, tc.want)
		}
	}
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(envelope))
	f.Add([]byte(`{"events":[{"action":"push","target":{"repository":"a","tag":"sha256-x"},"request":{"host":"h"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		jobs, ignored, err := ParseEnvelope(data)
		if err != nil {
			return
		}
		if len(jobs)+ignored > MaxEvents {
			t.Fatalf("%d jobs and %d ignored from at most %d events", len(jobs), ignored, MaxEvents)
		}
		for _, j := range jobs {
			image := j.Image
			if _, err := vouch.ParseReference(image); err != nil || strings.HasPrefix(image, vouch.LayoutPrefix) {
				t.Fatalf("image %q: %v", image, err)
			}
		}
	})
}

func FuzzParseSubjects(f *testing.F) {
	f.Add([]byte(`{"subject":"registry.example/app:v1","subjects":["r/b@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, images, err := ParseSubjects(data)
		if err != nil {
			return
		}
		if len(images) == 0 || len(images) > MaxEvents {
			t.Fatalf("%d images", len(images))
		}
		for _, image := range images {
			if _, err := vouch.ParseReference(image); err != nil || strings.HasPrefix(image, vouch.LayoutPrefix) {
				t.Fatalf("image %q: %v", image, err)
			}
		}
	})
}

// BenchmarkEnqueueFull is the cost of an event for a full queue (a
// flood): a lock, a map lookup, a count. Run with -bench EnqueueFull.
func BenchmarkEnqueueFull(b *testing.B) {
	q, _ := NewQueue(QueueOptions{Verify: func(context.Context, string, string) (*vouch.Report, error) { return nil, nil }, MaxQueued: 16})
	for i := range 16 {
		q.Enqueue(Job{Image: "r.example/app:" + string(rune('a'+i))})
	}
	images := make([]string, 1024)
	for i := range images {
		images[i] = "r.example/flood:" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if q.Enqueue(Job{Image: images[i%len(images)], Registry: "r.example"}) != Dropped {
			b.Fatal("not dropped")
		}
	}
}
