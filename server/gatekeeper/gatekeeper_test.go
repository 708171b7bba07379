package gatekeeper_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/server/gatekeeper"
)

func TestSplitKey(t *testing.T) {
	tests := []struct {
		key, ns, image, err string
	}{
		{key: "nginx:1.25", image: "nginx:1.25"},
		{key: "[team-a]registry.example/app:v1", ns: "team-a", image: "registry.example/app:v1"},
		{key: "[]nginx", err: "is not a namespace name"},
		{key: "[Team]nginx", err: "is not a namespace name"},
		{key: "[-a]nginx", err: "is not a namespace name"},
		{key: "[" + strings.Repeat("a", 64) + "]nginx", err: "is not a namespace name"},
		{key: "[team-a nginx", err: "closing ']'"},
	}
	for _, tt := range tests {
		ns, image, err := gatekeeper.SplitKey(tt.key)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("SplitKey(%q) error = %v, want %q", tt.key, err, tt.err)
			}
			continue
		}
		if err != nil || ns != tt.ns || image != tt.image {
			t.Errorf("SplitKey(%q) = %q, %q, %v", tt.key, ns, image, err)
		}
	}
}

// TestValue: the value is vouch's verdict with Ratify's isSuccess beside
// its fields, and the nodes that failed; the graph only when asked for.
func TestValue(t *testing.T) {
	root := &vouch.Node{Relation: vouch.RelSubject, Digest: "sha256:00", Outcome: vouch.Failed, Reason: "test: <bad>", Referrers: []*vouch.Node{
		{Relation: vouch.RelReferrer, ArtifactType: "application/vnd.test", Digest: "sha256:01", Outcome: vouch.Passed, Reason: "test: good"},
		{Relation: vouch.RelReferrer, ArtifactType: "application/vnd.test", Digest: "sha256:02", Outcome: vouch.Errored, Reason: "test: unreadable"},
	}}
	report := &vouch.Report{Subject: "a", Reference: "a@sha256:00", Verdict: vouch.Denied, Reason: "unsigned", Root: root}
	tests := []struct {
		graph bool
		want  string
	}{
		{false, `{"isSuccess":false,"traceID":"r1","timestamp":"2026-01-02T03:04:05Z","subject":"a","reference":"a@sha256:00","verdict":"denied","reason":"unsigned",` +
			`"failures":[{"digest":"sha256:00","outcome":"failed","reason":"test: \u003cbad\u003e"},{"digest":"sha256:02","artifactType":"application/vnd.test","outcome":"error","reason":"test: unreadable"}]}`},
		{true, `"graph":{"relation":"subject","mediaType":"","digest":"sha256:00"`},
	}
	for _, tt := range tests {
		data, err := json.Marshal(gatekeeper.NewValue(report, "r1", "2026-01-02T03:04:05Z", tt.graph))
		if err != nil {
			t.Fatal(err)
		}
		if !tt.graph && string(data) != tt.want || tt.graph && !strings.Contains(string(data), tt.want) {
			t.Fatalf("graph %v: value = %s, want %s", tt.graph, data, tt.want)
		}
	}

	// Past MaxFailures, the rest are counted.
	many := &vouch.Node{Relation: vouch.RelSubject}
	for range gatekeeper.MaxFailures + 3 {
		many.Referrers = append(many.Referrers, &vouch.Node{Outcome: vouch.Failed, Reason: "x"})
	}
	v := gatekeeper.NewValue(&vouch.Report{Verdict: vouch.Denied, Root: many}, "", "", false)
	if len(v.Failures) != gatekeeper.MaxFailures || v.FailuresOmitted != 3 || v.Graph != nil {
		t.Fatalf("%d failures, %d omitted", len(v.Failures), v.FailuresOmitted)
	}
}

// TestValueExplanations: a value carries the report's explanations, at
// most MaxExplanations, each text cut at MaxExplanationText bytes on a
// rune boundary, so that a verifier's long reason cannot swell the answer
// Gatekeeper decodes.
func TestValueExplanations(t *testing.T) {
	long := strings.Repeat("é", gatekeeper.MaxExplanationText) // 2 bytes a rune
	var explanations []vouch.Explanation
	for range gatekeeper.MaxExplanations + 2 {
		explanations = append(explanations, vouch.Explanation{Requirement: "signature", Node: "sha256:00", Reason: long, Wanted: "a signature",
			Found: []vouch.Finding{{Digest: "sha256:01", Outcome: vouch.Failed, Signer: "CN=untrusted", Reason: long}}})
	}
	report := &vouch.Report{Verdict: vouch.Denied, Reason: "no signature verified", Explanations: explanations}
	v := gatekeeper.NewValue(report, "", "", false)
	if len(v.Explanations) != gatekeeper.MaxExplanations || v.ExplanationsOmitted != 2 {
		t.Fatalf("%d explanations, %d omitted", len(v.Explanations), v.ExplanationsOmitted)
	}
	for _, e := range v.Explanations {
		for _, s := range []string{e.Reason, e.Found[0].Reason} {
			if len(s) > gatekeeper.MaxExplanationText || !utf8.ValidString(s) || !strings.HasSuffix(s, "…") {
				t.Fatalf("text of %d bytes (valid UTF-8: %v) not cut at %d: %.40q…", len(s), utf8.ValidString(s), gatekeeper.MaxExplanationText, s)
			}
		}
		if e.Found[0].Signer != "CN=untrusted" || e.Wanted != "a signature" {
			t.Fatalf("short texts changed: %+v", e)
		}
	}
	if report.Explanations[0].Reason != long {
		t.Fatal("NewValue changed the report's explanation")
	}
	data, err := json.Marshal(v)
	if err != nil || !strings.Contains(string(data), `"explanationsOmitted":2`) {
		t.Fatalf("%v: %.300s", err, data)
	}
}

// TestEncodedResponse: the provider writes its answer by splicing encoded
// values; the bytes are what encoding/json gives for the same response,
// also when the encodings of cached verdicts are kept (a CachingDecider),
// on the first answer and on the next.
func TestEncodedResponse(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, d := range []gatekeeper.Decider{decider{}, cachingDecider{}} {
		p, err := gatekeeper.New(gatekeeper.Options{Decider: d, Logger: slog.New(slog.DiscardHandler),
			TraceID: func(context.Context) string { return `id"<1>` }, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		keys := []string{"good<&>", "bad\u2028", "[ns]good", "[x", "good<&>"}
		for _, query := range []string{"", "?graph=true", "?graph=0", "", "?graph=true"} {
			body, _ := json.Marshal(gatekeeper.ProviderRequest{APIVersion: gatekeeper.APIVersionAlpha, Kind: gatekeeper.KindRequest, Request: gatekeeper.Request{Keys: keys}})
			rec := httptest.NewRecorder()
			p.Verify(rec, httptest.NewRequest(http.MethodPost, "/gatekeeper/v1/verify"+query, bytes.NewReader(body)))
			var items []gatekeeper.Item
			for _, key := range keys[:4] {
				_, image, err := gatekeeper.SplitKey(key)
				if err != nil {
					items = append(items, gatekeeper.Item{Key: key, Error: err.Error()})
					continue
				}
				report, _ := decider{}.Verify(context.Background(), "", image)
				items = append(items, gatekeeper.Item{Key: key, Value: gatekeeper.NewValue(report, `id"<1>`, "2026-01-02T03:04:05Z", query == "?graph=true")})
			}
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(gatekeeper.ProviderResponse{APIVersion: gatekeeper.APIVersionAlpha, Kind: gatekeeper.KindResponse,
				Response: gatekeeper.Response{Idempotent: true, Items: items}}); err != nil {
				t.Fatal(err)
			}
			if rec.Code != http.StatusOK || rec.Body.String() != want.String() {
				t.Fatalf("%T %q: status %d\n got %s\nwant %s", d, query, rec.Code, rec.Body.Bytes(), want.Bytes())
			}
		}
		rec := httptest.NewRecorder()
		p.Verify(rec, httptest.NewRequest(http.MethodPost, "/gatekeeper/v1/verify?graph=yes", strings.NewReader("{}")))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "graph") {
			t.Fatalf("graph=yes: %d %s", rec.Code, rec.Body.Bytes())
		}
	}
}

// decider answers without I/O: allowed for images containing "good",
// denied otherwise. It stands in for the engine where only the protocol is
// under test (the server tests use the real engine).
type decider struct{}

func (decider) Verify(_ context.Context, _, image string) (*vouch.Report, error) {
	root := &vouch.Node{Relation: vouch.RelSubject, Digest: "sha256:00", Outcome: vouch.Passed, Reason: "test: ok"}
	if strings.Contains(image, "good") {
		return &vouch.Report{Subject: image, Reference: image + "@sha256:00", Verdict: vouch.Allowed, Reason: "ok", Root: root}, nil
	}
	root.Outcome, root.Reason = vouch.Failed, "test: <no>"
	return &vouch.Report{Subject: image, Reference: image + "@sha256:00", Verdict: vouch.Denied, Reason: "no", Mode: "enforce", Root: root}, nil
}

func (decider) Resolve(_ context.Context, _, image string) (vouch.Reference, error) {
	return vouch.ParseReference(image)
}

// cachingDecider is decider with its verdicts cached, as the engine's are:
// allowed is verdict 1, denied verdict 2.
type cachingDecider struct{ decider }

func (d cachingDecider) VerifyCached(ctx context.Context, ns, image string) (*vouch.Report, uint64, error) {
	r, err := d.Verify(ctx, ns, image)
	if r.Verdict == vouch.Allowed {
		return r, 1, err
	}
	return r, 2, err
}
