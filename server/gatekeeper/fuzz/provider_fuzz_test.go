// Package fuzz holds the fuzz targets of the Gatekeeper provider's request
// parsing, apart from server/gatekeeper's other tests: those link OPA's
// Gatekeeper frameworks (constraint_test.go), whose instrumented build
// would cost a fuzz run minutes; this package links only the provider.
package fuzz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/server/gatekeeper"
)

// decider allows images whose name holds "good" and denies the others.
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

// FuzzParseRequest checks ParseRequest against encoding/json: a body is
// accepted exactly when json.Unmarshal decodes it into a ProviderRequest
// with a valid apiVersion and kind, and then into the same request (the
// hand-written parser of the usual shape must not differ from the decoder
// it stands in for).
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["a","[ns]b","a"]}}`,
		` { "kind" : "ProviderRequest" , "apiVersion" : "externaldata.gatekeeper.sh/v1alpha1" , "request" : { "keys" : [ ] } } `,
		`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest"}`,
		`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["\u00e9\n"]}}`,
		`{"APIVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":null}}`,
		`{"apiVersion":"x","apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["é"]}} x`,
		`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["a",]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := gatekeeper.ParseRequest(body, 1000)
		var want gatekeeper.ProviderRequest
		wantErr := json.Unmarshal(body, &want)
		if wantErr == nil && (want.APIVersion != gatekeeper.APIVersion && want.APIVersion != gatekeeper.APIVersionAlpha || want.Kind != gatekeeper.KindRequest || len(want.Request.Keys) > 1000) {
			wantErr = errors.New("invalid")
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: ParseRequest error %v, json.Unmarshal error %v", body, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q: ParseRequest %#v, json.Unmarshal %#v", body, *got, want)
		}
	})
}
