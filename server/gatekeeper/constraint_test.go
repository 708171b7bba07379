package gatekeeper_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/apis"
	"github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
	templatesv1 "github.com/open-policy-agent/frameworks/constraint/pkg/apis/templates/v1"
	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/core/constraints"
	"github.com/open-policy-agent/frameworks/constraint/pkg/core/templates"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"go.yaml.in/yaml/v3"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/internal/servertest"
)

// deployDir holds the Gatekeeper resources vouch ships.
const deployDir = "../../deploy/gatekeeper"

// TestGatekeeperConstraintTemplate evaluates deploy/gatekeeper's
// ConstraintTemplate and Constraint with Gatekeeper's own policy library
// (open-policy-agent/frameworks: the client, the Rego driver and its
// external_data builtin, with client certificates and the provider
// response cache) against a running vouch server over mutual TLS, with the
// Provider from deploy/gatekeeper/provider.yaml pointed at it.
func TestGatekeeperConstraintTemplate(t *testing.T) {
	ctx := context.Background()
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	p := testbed.NewPusher(t, reg.Host, "gk/app")
	signed := p.Image("signed", "signed")
	p.Image("unsigned", "unsigned")
	sig.Sign(t, reg.Host, "gk/app", signed)
	stack := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil), MutualTLS: true})

	providers := externaldata.NewCache()
	provider := loadProvider(t, stack.URL+"/gatekeeper/v1/verify", stack.Dir)
	if err := providers.Upsert(provider); err != nil {
		t.Fatal(err)
	}
	watcher, err := certwatcher.New(filepath.Join(stack.Dir, server.ClientCertFile), filepath.Join(stack.Dir, server.ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	responses := externaldata.NewProviderResponseCache(t.Context(), 3*time.Minute)
	driver, err := rego.New(
		rego.Defaults(),
		rego.AddExternalDataProviderCache(providers),
		rego.AddExternalDataProviderResponseCache(responses),
		rego.EnableExternalDataClientAuth(),
		rego.AddExternalDataClientCertWatcher(watcher),
	)
	if err != nil {
		t.Fatal(err)
	}
	client, err := constraintclient.NewClient(constraintclient.Targets(admissionTarget{}), constraintclient.Driver(driver), constraintclient.EnforcementPoints("vouch.test"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddTemplate(ctx, loadTemplate(t)); err != nil {
		t.Fatalf("AddTemplate: %v", err)
	}
	if _, err := client.AddConstraint(ctx, loadConstraint(t)); err != nil {
		t.Fatalf("AddConstraint: %v", err)
	}

	repo := reg.Host + "/gk/app"
	review := func(namespace string, spec map[string]any) []string {
		t.Helper()
		obj := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "demo", "namespace": namespace}, "spec": spec}
		resp, err := client.Review(ctx, &admissionReview{Kind: map[string]string{"group": "", "version": "v1", "kind": "Pod"}, Namespace: namespace, Operation: "CREATE", Object: obj})
		if err != nil {
			t.Fatalf("Review: %v", err)
		}
		var msgs []string
		for _, r := range resp.Results() {
			msgs = append(msgs, r.Msg)
		}
		slices.Sort(msgs)
		return msgs
	}
	containers := func(images ...string) []map[string]any {
		var out []map[string]any
		for i, im := range images {
			out = append(out, map[string]any{"name": fmt.Sprint("c", i), "image": im})
		}
		return out
	}

	if msgs := review("default", map[string]any{"containers": containers(repo + ":signed")}); len(msgs) != 0 {
		t.Fatalf("a signed image was refused: %q", msgs)
	}
	bad := map[string]any{
		"initContainers":      containers(repo + ":signed"),
		"containers":          containers(repo + ":unsigned"),
		"ephemeralContainers": containers("Not A Reference!"),
	}
	want := func(msgs []string) {
		t.Helper()
		if len(msgs) != 2 ||
			!slices.ContainsFunc(msgs, prefixed("image Not A Reference!: vouch could not decide: invalid image reference")) ||
			!slices.ContainsFunc(msgs, prefixed("image "+repo+":unsigned denied by vouch: no verified referrer")) {
			t.Fatalf("violations:\n%s", strings.Join(msgs, "\n"))
		}
	}
	want(review("team-a", bad))
	// The same keys again come from Gatekeeper's response cache, where the
	// status code the template sees is 0.
	want(review("team-a", bad))
	if n := strings.Count(stack.Logs.String(), `"msg":"request"`); n != 2 {
		t.Fatalf("the provider was called %d times, want 2 (the third review is answered by Gatekeeper's cache)", n)
	}

	// Excluded namespaces are not reviewed.
	if msgs := review("kube-system", bad); len(msgs) != 0 {
		t.Fatalf("kube-system: %q", msgs)
	}

	// A provider that cannot be reached is a violation, not an admission.
	provider.Spec.URL = "https://" + testbed.FreeAddr(t) + "/gatekeeper/v1/verify"
	if err := providers.Upsert(provider); err != nil {
		t.Fatal(err)
	}
	msgs := review("default", map[string]any{"containers": containers(repo + ":signed@" + signed.Digest.String())})
	if len(msgs) != 1 || !strings.Contains(msgs[0], "vouch: the provider failed (HTTP status 500)") {
		t.Fatalf("with the provider down: %q", msgs)
	}
}

func prefixed(p string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, p) }
}

// loadProvider reads provider.yaml with its url and caBundle set.
func loadProvider(t *testing.T, url, tlsDir string) *unversioned.Provider {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(tlsDir, server.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	var p unversioned.Provider
	decodeYAML(t, "provider.yaml", &p)
	if p.Spec.CABundle != "REPLACE_WITH_BASE64_CA_BUNDLE" || !strings.HasSuffix(p.Spec.URL, "/gatekeeper/v1/verify") || p.Spec.Timeout != 3 {
		t.Fatalf("provider.yaml changed: %+v", p.Spec)
	}
	p.Spec.URL, p.Spec.CABundle = url, base64.StdEncoding.EncodeToString(ca)
	return &p
}

// loadTemplate reads template.yaml.
func loadTemplate(t *testing.T) *templates.ConstraintTemplate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return convertTemplate(t, data)
}

// convertTemplate reads a templates.gatekeeper.sh/v1 ConstraintTemplate
// and converts it as Gatekeeper does (the rego field becomes Rego engine
// code).
func convertTemplate(t *testing.T, data []byte) *templates.ConstraintTemplate {
	t.Helper()
	var v1ct templatesv1.ConstraintTemplate
	decodeYAMLBytes(t, "template", data, &v1ct)
	scheme := runtime.NewScheme()
	if err := apis.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var ct templates.ConstraintTemplate
	if err := scheme.Convert(&v1ct, &ct, nil); err != nil {
		t.Fatal(err)
	}
	return &ct
}

func loadConstraint(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	var obj map[string]any
	decodeYAML(t, "constraint.yaml", &obj)
	return &unstructured.Unstructured{Object: obj}
}

// decodeYAML decodes a file of deployDir as Kubernetes does: YAML to JSON,
// JSON into v.
func decodeYAML(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	decodeYAMLBytes(t, name, data, v)
}

func decodeYAMLBytes(t *testing.T, name string, data []byte, v any) {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := json.Unmarshal(js, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// admissionReview is the review Gatekeeper's target builds from an
// AdmissionRequest: the template reads input.review.namespace and
// input.review.object.
type admissionReview struct {
	Kind      map[string]string `json:"kind"`
	Namespace string            `json:"namespace"`
	Operation string            `json:"operation"`
	Object    map[string]any    `json:"object"`
}

// admissionTarget stands in for Gatekeeper's admission.k8s.gatekeeper.sh
// target, which lives in the Gatekeeper module (a controller and all its
// dependencies): it hands the review to the template as Gatekeeper does,
// and matches a constraint's kinds and excludedNamespaces.
type admissionTarget struct{}

func (admissionTarget) GetName() string { return "admission.k8s.gatekeeper.sh" }

func (admissionTarget) MatchSchema() apiextensions.JSONSchemaProps {
	preserve := true
	return apiextensions.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}
}

func (admissionTarget) ProcessData(any) (bool, []string, any, error) { return false, nil, nil, nil }

func (admissionTarget) HandleReview(obj any) (bool, any, error) {
	r, ok := obj.(*admissionReview)
	if !ok {
		return false, nil, nil
	}
	// The Rego input is the review as JSON.
	data, err := json.Marshal(r)
	if err != nil {
		return false, nil, err
	}
	var review map[string]any
	err = json.Unmarshal(data, &review)
	return true, review, err
}

func (admissionTarget) ValidateConstraint(*unstructured.Unstructured) error { return nil }

func (admissionTarget) ToMatcher(c *unstructured.Unstructured) (constraints.Matcher, error) {
	excluded, _, err := unstructured.NestedStringSlice(c.Object, "spec", "match", "excludedNamespaces")
	if err != nil {
		return nil, err
	}
	kinds, _, err := unstructured.NestedSlice(c.Object, "spec", "match", "kinds")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, k := range kinds {
		m, _ := k.(map[string]any)
		ks, _ := m["kinds"].([]any)
		for _, n := range ks {
			names = append(names, fmt.Sprint(n))
		}
	}
	return matcher{excluded: excluded, kinds: names}, nil
}

type matcher struct {
	excluded, kinds []string
}

func (m matcher) Match(review any) (bool, error) {
	r, ok := review.(map[string]any)
	if !ok {
		return false, fmt.Errorf("review is %T", review)
	}
	ns, _ := r["namespace"].(string)
	kind, _ := r["kind"].(map[string]any)
	return !slices.Contains(m.excluded, ns) && slices.Contains(m.kinds, fmt.Sprint(kind["kind"])), nil
}

// ratifyStyleTemplate is written the way Ratify's published templates are
// (Rego v0 syntax, provider "ratify-provider", "[namespace]image" keys, the
// value's isSuccess, traceID and timestamp): a template kept from a Ratify
// installation works against vouch on Ratify's path.
const ratifyStyleTemplate = `
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: ratifystyle
spec:
  crd:
    spec:
      names:
        kind: RatifyStyle
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package ratifystyle

        remote_data := response {
          keys := [k | k = concat("", ["[", input.review.object.metadata.namespace, "]", input.review.object.spec.containers[_].image])]
          response := external_data({"provider": "ratify-provider", "keys": keys})
        }

        violation[{"msg": msg}] {
          err := remote_data.system_error
          err != ""
          msg := sprintf("system error: %s", [err])
        }

        violation[{"msg": msg}] {
          count(remote_data.errors) > 0
          msg := sprintf("errors: %v", [remote_data.errors])
        }

        violation[{"msg": msg}] {
          r := remote_data.responses[_]
          r[1].isSuccess == false
          msg := sprintf("time=%s, failed to verify %s, trace-id %s", [r[1].timestamp, r[0], r[1].traceID])
        }
`

func TestRatifyStyleTemplate(t *testing.T) {
	ctx := context.Background()
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	p := testbed.NewPusher(t, reg.Host, "ratify/app")
	signed := p.Image("signed", "signed")
	p.Image("unsigned", "unsigned")
	sig.Sign(t, reg.Host, "ratify/app", signed)
	stack := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil)})

	providers := externaldata.NewCache()
	provider := loadProvider(t, stack.URL+"/ratify/gatekeeper/v1/verify", stack.Dir)
	provider.Name = "ratify-provider"
	if err := providers.Upsert(provider); err != nil {
		t.Fatal(err)
	}
	driver, err := rego.New(rego.Defaults(), rego.AddExternalDataProviderCache(providers))
	if err != nil {
		t.Fatal(err)
	}
	client, err := constraintclient.NewClient(constraintclient.Targets(admissionTarget{}), constraintclient.Driver(driver), constraintclient.EnforcementPoints("vouch.test"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddTemplate(ctx, convertTemplate(t, []byte(ratifyStyleTemplate))); err != nil {
		t.Fatalf("AddTemplate: %v", err)
	}
	constraint := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "RatifyStyle", "metadata": map[string]any{"name": "ratify-style"},
		"spec": map[string]any{"match": map[string]any{"kinds": []any{map[string]any{"apiGroups": []any{""}, "kinds": []any{"Pod"}}}}},
	}}
	if _, err := client.AddConstraint(ctx, constraint); err != nil {
		t.Fatalf("AddConstraint: %v", err)
	}
	review := func(image string) []string {
		t.Helper()
		obj := map[string]any{"metadata": map[string]any{"namespace": "team-a"}, "spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": image}}}}
		resp, err := client.Review(ctx, &admissionReview{Kind: map[string]string{"kind": "Pod"}, Namespace: "team-a", Operation: "CREATE", Object: obj})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, r := range resp.Results() {
			msgs = append(msgs, r.Msg)
		}
		return msgs
	}
	if msgs := review(reg.Host + "/ratify/app:signed"); len(msgs) != 0 {
		t.Fatalf("signed: %q", msgs)
	}
	msgs := review(reg.Host + "/ratify/app:unsigned")
	if len(msgs) != 1 || !strings.Contains(msgs[0], "failed to verify [team-a]"+reg.Host+"/ratify/app:unsigned, trace-id ") || !strings.HasPrefix(msgs[0], "time=20") {
		t.Fatalf("unsigned: %q", msgs)
	}
	if msgs := review("Not A Reference!"); len(msgs) != 1 || !strings.Contains(msgs[0], "errors: ") {
		t.Fatalf("bad reference: %q", msgs)
	}
}
