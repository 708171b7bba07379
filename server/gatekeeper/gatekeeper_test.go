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

// TestValue: the value is vouch's report with Ratify's isSuccess beside
// its fields.
func TestValue(t *testing.T) {
	data, err := json.Marshal(gatekeeper.Value{IsSuccess: false, TraceID: "r1", Timestamp: "2026-01-02T03:04:05Z",
		Report: &vouch.Report{Subject: "a", Reference: "a@sha256:00", Verdict: vouch.Denied, Reason: "unsigned"}})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"isSuccess":false,"traceID":"r1","timestamp":"2026-01-02T03:04:05Z","subject":"a","reference":"a@sha256:00","verdict":"denied","reason":"unsigned"}`
	if string(data) != want {
		t.Fatalf("value = %s, want %s", data, want)
	}
}

// decider answers without I/O: allowed for images containing "good",
// denied otherwise. It stands in for the engine where only the protocol is
// under test (the server tests use the real engine).
type decider struct{}

func (decider) Verify(_ context.Context, _, image string) (*vouch.Report, error) {
	if strings.Contains(image, "good") {
		return &vouch.Report{Subject: image, Verdict: vouch.Allowed, Reason: "ok"}, nil
	}
	return &vouch.Report{Subject: image, Verdict: vouch.Denied, Reason: "no"}, nil
}

func (decider) Resolve(_ context.Context, _, image string) (vouch.Reference, error) {
	return vouch.ParseReference(image)
}

// FuzzProviderRequest sends arbitrary bodies to the verify endpoint: the
// answer is always a ProviderResponse, with a system error and no items,
// or one item per distinct key.
func FuzzProviderRequest(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["good","bad","good","[ns]good"]}}`))
	f.Add([]byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1alpha1","kind":"ProviderRequest","request":{"keys":[]}}`))
	f.Add([]byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["[x"]}} x`))
	f.Add([]byte(`{"kind":1}`))
	p, err := gatekeeper.New(gatekeeper.Options{Decider: decider{}, MaxKeys: 50, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/gatekeeper/v1/verify", bytes.NewReader(body))
		req.Body = http.MaxBytesReader(rec, req.Body, 1<<16)
		p.Verify(rec, req)
		var resp gatekeeper.ProviderResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("answer is not JSON: %v\n%s", err, rec.Body.Bytes())
		}
		if resp.Kind != gatekeeper.KindResponse || !resp.Response.Idempotent {
			t.Fatalf("answer %+v", resp)
		}
		if rec.Code != http.StatusOK {
			if resp.Response.SystemError == "" || len(resp.Response.Items) != 0 {
				t.Fatalf("status %d without a system error: %s", rec.Code, rec.Body.Bytes())
			}
			return
		}
		var req2 gatekeeper.ProviderRequest
		if err := json.Unmarshal(body, &req2); err != nil {
			t.Fatalf("a body Go cannot decode was answered 200: %q", body)
		}
		seen := map[string]bool{}
		for _, k := range req2.Request.Keys {
			seen[k] = true
		}
		if len(resp.Response.Items) != len(seen) || resp.APIVersion != req2.APIVersion {
			t.Fatalf("%d items for %d distinct keys: %s", len(resp.Response.Items), len(seen), rec.Body.Bytes())
		}
		for _, it := range resp.Response.Items {
			if !seen[it.Key] || (it.Error == "") == (it.Value == nil) {
				t.Fatalf("item %+v", it)
			}
		}
	})
}
