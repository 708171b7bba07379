package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/server/admission"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/gatekeeper"
	"github.com/vouch-project/vouch/server/internal/servertest"
	"github.com/vouch-project/vouch/verifier/notation"
)

// gkResponse is a ProviderResponse as a client reads it.
type gkResponse struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   struct {
		Idempotent  bool     `json:"idempotent"`
		Items       []gkItem `json:"items"`
		SystemError string   `json:"systemError"`
	} `json:"response"`
}

type gkItem struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

// verdict is what a verify item's value carries.
type verdict struct {
	IsSuccess bool          `json:"isSuccess"`
	Verdict   vouch.Verdict `json:"verdict"`
	Reason    string        `json:"reason"`
	Reference string        `json:"reference"`
	Graph     *vouch.Node   `json:"graph"`
}

// gkValue is the whole of a verify item's value, in the order of its
// fields on the wire: what json.Marshal gives for the gkValue of a report
// is the value the provider must answer for it.
type gkValue struct {
	IsSuccess       bool          `json:"isSuccess"`
	TraceID         string        `json:"traceID"`
	Timestamp       string        `json:"timestamp"`
	Subject         string        `json:"subject"`
	Reference       string        `json:"reference"`
	Verdict         vouch.Verdict `json:"verdict"`
	Reason          string        `json:"reason"`
	Mode            vouch.Mode    `json:"mode,omitempty"`
	Waived          bool          `json:"waived,omitempty"`
	Failures        []gkFailure   `json:"failures,omitempty"`
	FailuresOmitted int           `json:"failuresOmitted,omitempty"`
	// Explanations are the report's, at most gatekeeper.MaxExplanations
	// (the tests' texts are under gatekeeper.MaxExplanationText).
	Explanations        []vouch.Explanation `json:"explanations,omitempty"`
	ExplanationsOmitted int                 `json:"explanationsOmitted,omitempty"`
	Graph               *vouch.Node         `json:"graph,omitempty"`
}

// gkFailure is a failed node in a gkValue.
type gkFailure struct {
	Digest       digest.Digest `json:"digest"`
	ArtifactType string        `json:"artifactType,omitempty"`
	Outcome      vouch.Outcome `json:"outcome"`
	Reason       string        `json:"reason"`
}

// newGKValue returns the value answering report, as the request traceID
// at timestamp, with the graph when graph is true.
func newGKValue(report *vouch.Report, traceID, timestamp string, graph bool) gkValue {
	v := gkValue{IsSuccess: report.Verdict == vouch.Allowed, TraceID: traceID, Timestamp: timestamp, Subject: report.Subject, Reference: report.Reference,
		Verdict: report.Verdict, Reason: report.Reason, Mode: report.Mode, Waived: report.Waived}
	if report.Root != nil {
		report.Root.Walk(func(n *vouch.Node, _ int) {
			if n.Outcome != vouch.Failed && n.Outcome != vouch.Errored {
				return
			}
			if len(v.Failures) == gatekeeper.MaxFailures {
				v.FailuresOmitted++
				return
			}
			v.Failures = append(v.Failures, gkFailure{Digest: n.Digest, ArtifactType: n.ArtifactType, Outcome: n.Outcome, Reason: n.Reason})
		})
	}
	v.Explanations = report.Explanations
	if n := len(v.Explanations); n > gatekeeper.MaxExplanations {
		v.Explanations, v.ExplanationsOmitted = v.Explanations[:gatekeeper.MaxExplanations], n-gatekeeper.MaxExplanations
	}
	if graph {
		v.Graph = report.Root
	}
	return v
}

func providerRequest(keys ...string) gatekeeper.ProviderRequest {
	return gatekeeper.ProviderRequest{APIVersion: gatekeeper.APIVersion, Kind: gatekeeper.KindRequest, Request: gatekeeper.Request{Keys: keys}}
}

// verify posts keys to path and decodes the answer.
func verify(t testing.TB, s *servertest.Stack, path string, keys ...string) (int, gkResponse) {
	t.Helper()
	status, body := s.Post(t, path, providerRequest(keys...))
	var resp gkResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("%s: status %d, body %s: %v", path, status, body, err)
	}
	return status, resp
}

func itemsByKey(t testing.TB, resp gkResponse) map[string]gkItem {
	t.Helper()
	out := map[string]gkItem{}
	for _, it := range resp.Response.Items {
		if _, dup := out[it.Key]; dup {
			t.Fatalf("key %q answered twice", it.Key)
		}
		out[it.Key] = it
	}
	return out
}

func valueOf(t testing.TB, it gkItem) verdict {
	t.Helper()
	if it.Error != "" {
		t.Fatalf("key %s: error %q, want a value", it.Key, it.Error)
	}
	var v verdict
	if err := json.Unmarshal(it.Value, &v); err != nil {
		t.Fatalf("key %s: value %s: %v", it.Key, it.Value, err)
	}
	return v
}

// images pushes a signed and an unsigned image into repo of reg.
func images(t testing.TB, sig *servertest.Signer, reg *testbed.Registry, repo string) (signed, unsigned ocispec.Descriptor) {
	t.Helper()
	p := testbed.NewPusher(t, reg.Host, repo)
	signed = p.Image("signed", "signed "+repo)
	unsigned = p.Image("unsigned", "unsigned "+repo)
	sig.Sign(t, reg.Host, repo, signed)
	return signed, unsigned
}

// TestGatekeeperProvider drives the verify and mutate endpoints over HTTPS
// with the real engine, executor, registry store and notation verifier, on
// both registries (referrers API and tag-schema fallback).
func TestGatekeeperProvider(t *testing.T) {
	sig := servertest.NewSigner(t)
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			signed, _ := images(t, sig, reg, "gk/app")
			s := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil)})
			repo := reg.Host + "/gk/app"
			keys := []string{
				repo + ":signed",
				repo + ":unsigned",
				"[team-a]" + repo + "@" + signed.Digest.String(),
				repo + ":signed", // duplicate: answered once
				"Not A Reference!",
				"oci-layout:/etc:passwd",
				"[Bad_NS]" + repo + ":signed",
				repo + ":no-such-tag",
			}
			for _, path := range []string{"/gatekeeper/v1/verify", "/ratify/gatekeeper/v1/verify"} {
				status, resp := verify(t, s, path, keys...)
				if status != http.StatusOK || resp.APIVersion != gatekeeper.APIVersion || resp.Kind != gatekeeper.KindResponse || !resp.Response.Idempotent || resp.Response.SystemError != "" {
					t.Fatalf("%s: status %d, response %+v", path, status, resp)
				}
				if len(resp.Response.Items) != len(keys)-1 {
					t.Fatalf("%d items for %d distinct keys", len(resp.Response.Items), len(keys)-1)
				}
				items := itemsByKey(t, resp)
				v := valueOf(t, items[repo+":signed"])
				if !v.IsSuccess || v.Verdict != vouch.Allowed || v.Reference != repo+":signed@"+signed.Digest.String() || v.Graph != nil {
					t.Fatalf("signed image: %+v", v)
				}
				// The report tree comes on request.
				_, full := verify(t, s, path+"?graph=true", repo+":signed")
				if v := valueOf(t, full.Response.Items[0]); !v.IsSuccess || v.Graph == nil || len(v.Graph.Referrers) != 1 {
					t.Fatalf("signed image with ?graph=true: %+v", v)
				}
				if v := valueOf(t, items["[team-a]"+repo+"@"+signed.Digest.String()]); !v.IsSuccess {
					t.Fatalf("signed image by digest in a namespace: %+v", v)
				}
				v = valueOf(t, items[repo+":unsigned"])
				if v.IsSuccess || v.Verdict != vouch.Denied || !strings.Contains(v.Reason, "no verified referrer") {
					t.Fatalf("unsigned image: %+v", v)
				}
				for key, want := range map[string]string{
					"Not A Reference!":            "invalid image reference",
					"oci-layout:/etc:passwd":      "OCI layout references are not served",
					"[Bad_NS]" + repo + ":signed": "is not a namespace name",
					repo + ":no-such-tag":         "not found",
				} {
					if it := items[key]; !strings.Contains(it.Error, want) || it.Value != nil {
						t.Fatalf("key %q: error %q, value %s; want an error saying %q", key, it.Error, it.Value, want)
					}
				}
			}

			// An older Gatekeeper's v1alpha1 request gets a v1alpha1 answer.
			req := providerRequest(repo + ":signed")
			req.APIVersion = gatekeeper.APIVersionAlpha
			_, body := s.Post(t, "/gatekeeper/v1/verify", req)
			var alpha gkResponse
			if err := json.Unmarshal(body, &alpha); err != nil || alpha.APIVersion != gatekeeper.APIVersionAlpha || len(alpha.Response.Items) != 1 {
				t.Fatalf("v1alpha1: %s", body)
			}

			// Mutate pins tags; a digest stays as it is.
			byDigest := repo + "@" + signed.Digest.String()
			for _, path := range []string{"/gatekeeper/v1/mutate", "/ratify/gatekeeper/v1/mutate"} {
				status, resp := verify(t, s, path, repo+":signed", "[team-a]"+repo+":unsigned", byDigest, repo+":no-such-tag")
				items := itemsByKey(t, resp)
				if status != http.StatusOK || !resp.Response.Idempotent || len(items) != 4 {
					t.Fatalf("%s: %d %+v", path, status, resp)
				}
				var pinned string
				if err := json.Unmarshal(items[repo+":signed"].Value, &pinned); err != nil || pinned != byDigest {
					t.Fatalf("mutate signed: %s (%v), want %s", items[repo+":signed"].Value, err, byDigest)
				}
				if err := json.Unmarshal(items[byDigest].Value, &pinned); err != nil || pinned != byDigest {
					t.Fatalf("mutate by digest: %s", items[byDigest].Value)
				}
				if err := json.Unmarshal(items["[team-a]"+repo+":unsigned"].Value, &pinned); err != nil || !strings.HasPrefix(pinned, repo+"@sha256:") {
					t.Fatalf("mutate in a namespace: %s", items["[team-a]"+repo+":unsigned"].Value)
				}
				if it := items[repo+":no-such-tag"]; !strings.Contains(it.Error, "not found") {
					t.Fatalf("mutate of a missing tag: %+v", it)
				}
			}
		})
	}
}

// TestCachedAnswers: an answer, whose value is spliced from the encoding
// kept with the cached verdict, is byte for byte encoding/json's encoding
// of the Value of the verdict's report, for each key (allowed, unsigned,
// signed by an untrusted signer; by tag, by digest, with a namespace), with
// and without the graph, verified or from the cache; and it follows the
// report when the report changes.
func TestCachedAnswers(t *testing.T) {
	ctx := t.Context()
	sig, stranger := servertest.NewSigner(t), servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	signed, _ := images(t, sig, reg, "cached/app")
	p := testbed.NewPusher(t, reg.Host, "cached/app")
	forged := p.Image("forged", "signed by a stranger")
	stranger.Sign(t, reg.Host, "cached/app", forged)
	exec := sig.Executor(t, nil)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	s := servertest.Start(t, servertest.Options{Executor: exec, Cache: cache.NewMemory(cache.MemoryOptions{Now: clock}),
		Engine: func(o *engine.Options) { o.Now = clock }})
	repo := reg.Host + "/cached/app"
	keys := []string{repo + ":signed", repo + ":unsigned", repo + ":forged", "[team-a]" + repo + ":signed", repo + "@" + signed.Digest.String()}

	// check compares each answered value with the encoding of the report
	// the engine has for its key (which is verified again after a test
	// changed the registry: fresh verifications may differ, as the
	// executor may skip signatures once the policy is satisfied).
	check := func(resp gkResponse, graph bool) map[string]string {
		t.Helper()
		values := map[string]string{}
		for _, it := range resp.Response.Items {
			var got gkValue
			if err := json.Unmarshal(it.Value, &got); err != nil || it.Error != "" {
				t.Fatalf("%s: %v %+v", it.Key, err, it)
			}
			ns, image, _ := gatekeeper.SplitKey(it.Key)
			report, err := s.Engine.Verify(ctx, ns, image)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(newGKValue(report, got.TraceID, got.Timestamp, graph))
			if err != nil {
				t.Fatal(err)
			}
			if string(it.Value) != string(want) {
				t.Fatalf("%s: answer\n%s\nfresh encoding\n%s", it.Key, it.Value, want)
			}
			values[it.Key] = string(it.Value[strings.Index(string(it.Value), `"subject"`):])
		}
		return values
	}
	var first map[string]string
	for round := range 2 { // verified, then cached
		for _, graph := range []bool{false, true} {
			path := "/gatekeeper/v1/verify"
			if graph {
				path += "?graph=true"
			}
			_, resp := verify(t, s, path, keys...)
			values := check(resp, graph)
			if !graph && round == 0 {
				first = values
			}
		}
	}
	if v := first[repo+":forged"]; !strings.Contains(v, `"failures":[{"digest":`) || !strings.Contains(v, `"outcome":"failed"`) || strings.Contains(v, `"graph"`) {
		t.Fatalf("a denial names the failed signature, without the graph: %s", v)
	}
	if strings.Contains(first[repo+":signed"], "failures") {
		t.Fatalf("allowed image: %s", first[repo+":signed"])
	}

	// The stranger signs the signed image too: once its verdict expires,
	// the answer is the new report's, and is then cached in turn.
	stranger.Sign(t, reg.Host, "cached/app", signed)
	mu.Lock()
	now = now.Add(engine.DefaultAllowTTL + time.Second)
	mu.Unlock()
	for range 2 {
		_, resp := verify(t, s, "/gatekeeper/v1/verify", keys...)
		values := check(resp, false)
		if v := values[repo+":signed"]; v == first[repo+":signed"] || !strings.Contains(v, ` of 2 referrers verified`) {
			t.Fatalf("after a second signature: %s", v)
		}
	}
}

// TestManyKeys sends 100 distinct images in one request: half signed.
func TestManyKeys(t *testing.T) {
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	p := testbed.NewPusher(t, reg.Host, "many/app")
	var keys []string
	for i := range 100 {
		d := p.Image(fmt.Sprintf("v%d", i), fmt.Sprintf("image %d", i))
		if i%2 == 0 {
			sig.Sign(t, reg.Host, "many/app", d)
		}
		keys = append(keys, fmt.Sprintf("%s/many/app:v%d", reg.Host, i))
	}
	s := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil), Budget: 20 * time.Second})
	start := time.Now()
	status, resp := verify(t, s, "/gatekeeper/v1/verify", keys...)
	t.Logf("100 keys, uncached: %v", time.Since(start))
	if status != http.StatusOK || len(resp.Response.Items) != 100 {
		t.Fatalf("status %d, %d items", status, len(resp.Response.Items))
	}
	for i, it := range resp.Response.Items {
		if it.Key != keys[i] {
			t.Fatalf("item %d is %q, want %q: items come in the order asked", i, it.Key, keys[i])
		}
		if v := valueOf(t, it); v.IsSuccess != (i%2 == 0) {
			t.Fatalf("%s: isSuccess %v (%s)", it.Key, v.IsSuccess, v.Reason)
		}
	}
	start = time.Now()
	verify(t, s, "/gatekeeper/v1/verify", keys...)
	t.Logf("100 keys, cached: %v", time.Since(start))
}

// TestMalformedRequests: whole-request failures are systemErrors, with the
// HTTP status saying which.
func TestMalformedRequests(t *testing.T) {
	sig := servertest.NewSigner(t)
	s := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil), MaxBodyBytes: 4096})
	big := providerRequest()
	for i := range 200 {
		big.Request.Keys = append(big.Request.Keys, fmt.Sprintf("registry.example/app:v%d", i))
	}
	bigBody, _ := json.Marshal(big)
	tests := []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"malformed JSON", []byte(`{"apiVersion":`), http.StatusBadRequest, "malformed ProviderRequest"},
		{"not an object", []byte(`[1,2]`), http.StatusBadRequest, "malformed ProviderRequest"},
		{"trailing data", []byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":[]}} {}`), http.StatusBadRequest, "data after the JSON object"},
		{"wrong apiVersion", []byte(`{"apiVersion":"v1","kind":"ProviderRequest","request":{"keys":["a"]}}`), http.StatusBadRequest, `apiVersion "v1" is not`},
		{"wrong kind", []byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderResponse","request":{"keys":["a"]}}`), http.StatusBadRequest, `kind "ProviderResponse"`},
		{"body over the limit", bigBody, http.StatusRequestEntityTooLarge, "over the limit of 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.Post(t, "/gatekeeper/v1/verify", tt.body)
			var resp gkResponse
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatalf("status %d, not JSON: %s", status, body)
			}
			if status != tt.status || !strings.Contains(resp.Response.SystemError, tt.want) || len(resp.Response.Items) != 0 {
				t.Fatalf("status %d, %s; want %d and a systemError saying %q", status, body, tt.status, tt.want)
			}
		})
	}
	resp, err := s.Client.Get(s.URL + "/gatekeeper/v1/verify")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	// An empty request is answered with no items.
	status, empty := verify(t, s, "/gatekeeper/v1/verify")
	if status != http.StatusOK || len(empty.Response.Items) != 0 || empty.Response.SystemError != "" {
		t.Fatalf("empty request: %d %+v", status, empty)
	}
	// The admission endpoints refuse what is not an AdmissionReview.
	status, body := s.Post(t, "/admission/v1/validate", []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1"}}`))
	if status != http.StatusBadRequest || !strings.Contains(string(body), "want an AdmissionReview admission.k8s.io/v1") {
		t.Fatalf("v1beta1 review: %d %s", status, body)
	}
}

// review posts an AdmissionReview for obj and returns the response.
func review(t testing.TB, s *servertest.Stack, path, namespace string, kind admission.GroupVersionKind, obj any) *admission.Response {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	req := admission.Review{APIVersion: admission.APIVersion, Kind: "AdmissionReview", Request: &admission.Request{
		UID: "uid-" + kind.Kind, Kind: kind, Namespace: namespace, Name: "demo", Operation: "CREATE", Object: raw,
	}}
	status, body := s.Post(t, path, req)
	var out admission.Review
	if err := json.Unmarshal(body, &out); err != nil || status != http.StatusOK || out.Response == nil {
		t.Fatalf("%s: status %d, body %s, %v", path, status, body, err)
	}
	if out.Response.UID != req.Request.UID || out.APIVersion != admission.APIVersion || out.Kind != "AdmissionReview" {
		t.Fatalf("response does not echo the request: %+v", out)
	}
	return out.Response
}

// podSpec builds a pod spec whose containers use the images given.
func podSpec(init, main, ephemeral string) map[string]any {
	c := func(name, image string) []map[string]any {
		if image == "" {
			return nil
		}
		return []map[string]any{{"name": name, "image": image}}
	}
	return map[string]any{"initContainers": c("setup", init), "containers": c("app", main), "ephemeralContainers": c("debug", ephemeral)}
}

func deployment(spec map[string]any) map[string]any {
	return map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "demo"},
		"spec": map[string]any{"template": map[string]any{"spec": spec}}}
}

var deploymentKind = admission.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}

// TestAdmission drives the validating and mutating webhooks over HTTPS.
func TestAdmission(t *testing.T) {
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	signed, unsigned := images(t, sig, reg, "adm/app")
	s := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil)})
	repo := reg.Host + "/adm/app"

	t.Run("validate", func(t *testing.T) {
		// Signed init container, signed container, unsigned ephemeral one.
		resp := review(t, s, "/admission/v1/validate", "default", deploymentKind, deployment(podSpec(repo+":signed", repo+"@"+signed.Digest.String(), repo+":unsigned")))
		if resp.Allowed || resp.Status == nil || resp.Status.Code != http.StatusForbidden {
			t.Fatalf("want a denial: %+v", resp)
		}
		msg := resp.Status.Message
		if !strings.Contains(msg, `ephemeral container "debug" image `+repo+":unsigned") || !strings.Contains(msg, "no verified referrer") || strings.Contains(msg, ":signed:") || !strings.Contains(msg, "denied 1 of 3 images") {
			t.Fatalf("message: %s", msg)
		}
		// The unsigned image in an init container of a Pod.
		pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "spec": podSpec(repo+":unsigned", repo+":signed", "")}
		resp = review(t, s, "/admission/v1/validate", "default", admission.GroupVersionKind{Version: "v1", Kind: "Pod"}, pod)
		if resp.Allowed || !strings.Contains(resp.Status.Message, `init container "setup" image `+repo+":unsigned") {
			t.Fatalf("pod: %+v", resp.Status)
		}
		// All signed, in a CronJob.
		cron := map[string]any{"spec": map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": podSpec(repo+":signed", repo+":signed", "")}}}}}
		resp = review(t, s, "/admission/v1/validate", "default", admission.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, cron)
		if !resp.Allowed || resp.Status != nil {
			t.Fatalf("cronjob: %+v", resp)
		}
		// A kind without a pod spec is allowed: nothing to check.
		resp = review(t, s, "/admission/v1/validate", "default", admission.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, map[string]any{"data": map[string]string{"a": "b"}})
		if !resp.Allowed {
			t.Fatalf("configmap: %+v", resp)
		}
	})

	t.Run("mutate", func(t *testing.T) {
		obj := deployment(podSpec(repo+":signed", repo+"@"+unsigned.Digest.String(), repo+":no-such-tag"))
		resp := review(t, s, "/admission/v1/mutate", "default", deploymentKind, obj)
		if !resp.Allowed || resp.PatchType != "JSONPatch" {
			t.Fatalf("mutate: %+v", resp)
		}
		var ops []map[string]string
		if err := json.Unmarshal(resp.Patch, &ops); err != nil {
			t.Fatalf("patch %s: %v", resp.Patch, err)
		}
		want := []map[string]string{{"op": "replace", "path": "/spec/template/spec/initContainers/0/image", "value": repo + "@" + signed.Digest.String()}}
		if fmt.Sprint(ops) != fmt.Sprint(want) {
			t.Fatalf("patch = %v, want %v", ops, want)
		}
		if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], `could not pin ephemeral container "debug" image `+repo+":no-such-tag") {
			t.Fatalf("warnings: %q", resp.Warnings)
		}
	})
}

// TestHealth checks /healthz, /readyz and that /metrics shows what the
// server did.
func TestHealth(t *testing.T) {
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	images(t, sig, reg, "health/app")
	s := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil)})
	get := func(path string) (int, string) {
		resp, err := s.Client.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, readAll(t, resp)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d", code)
	}
	s.Server.SetReady(false)
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz when not ready: %d", code)
	}
	s.Server.SetReady(true)
	verify(t, s, "/gatekeeper/v1/verify", reg.Host+"/health/app:signed", reg.Host+"/health/app:unsigned")
	verify(t, s, "/gatekeeper/v1/verify", reg.Host+"/health/app:signed")
	_, metrics := get("/metrics")
	for _, want := range []string{
		`vouch_http_request_duration_seconds_count{code="200",endpoint="gatekeeper-verify"} 2`,
		`vouch_answers_total{outcome="allowed"} 2`,
		`vouch_answers_total{outcome="denied"} 1`,
		`vouch_cache_lookups_total{kind="verdict",result="hit"} 1`,
		`vouch_cache_lookups_total{kind="verdict",result="miss"} 2`,
		`vouch_cache_lookups_total{kind="tag",result="hit"} 1`,
		`vouch_verification_duration_seconds_count{verdict="allowed"} 1`,
		`vouch_http_requests_in_flight 0`,
		`vouch_verifications_in_flight 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(metrics)
	}
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestLogs: JSON lines with the request id (the caller's, when it is a
// plain token), and nothing of the request's headers.
func TestLogs(t *testing.T) {
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	images(t, sig, reg, "logs/app")
	s := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil)})
	send := func(id string) string {
		body, _ := json.Marshal(providerRequest(reg.Host+"/logs/app:unsigned", "bad ref!"))
		req, err := http.NewRequest(http.MethodPost, s.URL+"/gatekeeper/v1/verify", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-Id", id)
		req.Header.Set("Authorization", "Bearer SECRET-TOKEN")
		req.Header.Set("Cookie", "session=SECRET-COOKIE")
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Request-Id")
	}
	if got := send("req-42.a_b"); got != "req-42.a_b" {
		t.Fatalf("X-Request-Id echoed as %q", got)
	}
	generated := send("not a token; 1=1")
	if len(generated) != 16 || strings.Contains(generated, " ") {
		t.Fatalf("generated request id %q", generated)
	}
	logs := s.Logs.String()
	if strings.Contains(logs, "SECRET") {
		t.Fatalf("logs carry request headers:\n%s", logs)
	}
	var sawRequest, sawDenial bool
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %s", line)
		}
		switch rec["msg"] {
		case "request":
			sawRequest = sawRequest || rec["request_id"] == "req-42.a_b" && rec["endpoint"] == "gatekeeper-verify"
		case "denied":
			sawDenial = sawDenial || rec["request_id"] == generated && strings.Contains(fmt.Sprint(rec["reason"]), "no verified referrer")
		}
	}
	if !sawRequest || !sawDenial {
		t.Fatalf("request line %v, denial line %v:\n%s", sawRequest, sawDenial, logs)
	}
}

// TestAdmissionWarnMode: under a policy scope in warn mode, an image the
// requirements would deny is admitted with a warning that says why; in
// enforce mode (another namespace's scope) it is denied.
func TestAdmissionWarnMode(t *testing.T) {
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	images(t, sig, reg, "warn/app")
	require := []policy.Requirement{{ArtifactType: notation.ArtifactType}}
	cfg := policy.Config{Scopes: []policy.Scope{
		{Name: "everywhere", Repositories: []string{"*"}, Require: require},
		{Name: "relaxed", Repositories: []string{"*"}, Namespaces: []string{"sandbox"}, Mode: vouch.ModeWarn, Require: require},
	}}
	exec := sig.Executor(t, nil)
	s := servertest.Start(t, servertest.Options{Executor: exec, Engine: func(o *engine.Options) {
		o.Executor = func(_ context.Context, ns string) (*vouch.Executor, string) {
			pol, err := policy.New(cfg, []string{"notation"}, policy.InNamespace(ns))
			if err != nil {
				t.Errorf("policy: %v", err)
				return nil, ""
			}
			e := *exec
			e.Policy = pol
			return &e, "ns=" + ns
		}
	}})
	pod := map[string]any{"spec": podSpec("", reg.Host+"/warn/app:unsigned", "")}
	podKind := admission.GroupVersionKind{Version: "v1", Kind: "Pod"}

	resp := review(t, s, "/admission/v1/validate", "sandbox", podKind, pod)
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], `vouch: container "app" image `+reg.Host+"/warn/app:unsigned: allowed in warn mode, would deny") {
		t.Fatalf("sandbox: %+v", resp)
	}
	resp = review(t, s, "/admission/v1/validate", "production", podKind, pod)
	if resp.Allowed || len(resp.Warnings) != 0 {
		t.Fatalf("production: %+v", resp)
	}
	// A signed image gives no warning in warn mode.
	resp = review(t, s, "/admission/v1/validate", "sandbox", podKind, map[string]any{"spec": podSpec("", reg.Host+"/warn/app:signed", "")})
	if !resp.Allowed || len(resp.Warnings) != 0 {
		t.Fatalf("signed in sandbox: %+v", resp)
	}
}
