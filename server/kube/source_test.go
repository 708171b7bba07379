package kube_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/api/v1alpha1"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/internal/servertest"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/server/reload"
	"github.com/vouch-project/vouch/store/registry"
)

const (
	ns = "vouch"
	// serviceAccount is the user vouch runs as in these tests: the
	// service account of deploy/rbac, bound to the Roles there and to
	// nothing else.
	serviceAccount = "system:serviceaccount:vouch:vouch"
	trustPolicy    = `{"version": "1.0", "trustPolicies": [{"name": "all", "registryScopes": ["*"],
  "signatureVerification": {"level": "strict"}, "trustStores": ["ca:test"], "trustedIdentities": ["*"]}]}`
)

// validSpec trusts the certificates of key ca.crt of the Secret
// notation-ca, under the trust policy of the ConfigMap
// notation-trust-policy: both in vouch's namespace, named in
// deploy/rbac/role.yaml.
const validSpec = `
trustStores:
  - name: ca:test
    refs: [{kind: Secret, name: notation-ca, key: ca.crt}]
verifiers:
  - name: notation
    type: notation
    notation:
      trustPolicyRef: {kind: ConfigMap, name: notation-trust-policy, key: trustpolicy.json}
`

// bed is a real kube-apiserver and etcd with vouch's CRDs and RBAC, and a
// registry with four images: "one" signed under CA1, "two" under CA2,
// "both" under each, "unsigned".
type bed struct {
	admin    client.WithWatch
	cfg      *rest.Config
	host     string
	ca1, ca2 []byte
}

func newBed(t *testing.T) *bed {
	t.Helper()
	if testing.Short() {
		t.Skip("starts kube-apiserver")
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		testbed.Bin(t, name)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: testbed.BinDir(),
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "deploy", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("envtest stop: %v", err)
		}
	})
	admin, err := kube.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := &bed{admin: admin, cfg: cfg}
	b.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	for _, f := range []string{"serviceaccount.yaml", "clusterrole.yaml", "role.yaml"} {
		b.apply(t, filepath.Join("..", "..", "deploy", "rbac", f))
	}

	reg := testbed.GGCR(t, nil)
	s1, s2 := testbed.NewNotationSigner(t), testbed.NewNotationSigner(t)
	p := testbed.NewPusher(t, reg.Host, "kube/app")
	s1.Sign(p, p.Image("one", "one"))
	s2.Sign(p, p.Image("two", "two"))
	both := p.Image("both", "both")
	s1.Sign(p, both)
	s2.Sign(p, both)
	p.Image("unsigned", "unsigned")
	b.host, b.ca1, b.ca2 = reg.Host, readFile(t, s1.CAFile), readFile(t, s2.CAFile)
	return b
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (b *bed) create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := b.admin.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// apply creates the objects of a YAML manifest.
func (b *bed) apply(t *testing.T, path string) {
	t.Helper()
	for _, doc := range strings.Split(string(readFile(t, path)), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b.create(t, &u)
	}
}

// as returns a client that acts as user (impersonation).
func (b *bed) as(t *testing.T, user string) client.WithWatch {
	t.Helper()
	cfg := rest.CopyConfig(b.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := kube.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (b *bed) image(tag string) string { return b.host + "/kube/app:" + tag }

// setSecret creates or updates a Secret of vouch's namespace.
func (b *bed) setSecret(t *testing.T, name string, data map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	var s corev1.Secret
	err := b.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s)
	if err != nil {
		b.create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data})
		return
	}
	s.Data = data
	if err := b.admin.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
}

// setSpec creates or updates the ClusterVouchConfig "vouch" with the spec
// written in YAML, and returns its generation.
func (b *bed) setSpec(t *testing.T, spec string) int64 {
	t.Helper()
	ctx := context.Background()
	var s v1alpha1.ClusterVouchConfigSpec
	if err := yaml.UnmarshalStrict([]byte(spec), &s); err != nil {
		t.Fatal(err)
	}
	var cr v1alpha1.ClusterVouchConfig
	if err := b.admin.Get(ctx, client.ObjectKey{Name: kube.DefaultName}, &cr); err != nil {
		cr = v1alpha1.ClusterVouchConfig{ObjectMeta: metav1.ObjectMeta{Name: kube.DefaultName}, Spec: s}
		b.create(t, &cr)
		return cr.Generation
	}
	cr.Spec = s
	if err := b.admin.Update(ctx, &cr); err != nil {
		t.Fatal(err)
	}
	return cr.Generation
}

// get returns the ClusterVouchConfig "vouch".
func (b *bed) get(t *testing.T) *v1alpha1.ClusterVouchConfig {
	t.Helper()
	var cr v1alpha1.ClusterVouchConfig
	if err := b.admin.Get(context.Background(), client.ObjectKey{Name: kube.DefaultName}, &cr); err != nil {
		t.Fatal(err)
	}
	return &cr
}

// waitStatus waits until the status describes generation gen with a Ready
// condition of status and reason, and returns the condition.
func (b *bed) waitStatus(t *testing.T, gen int64, status metav1.ConditionStatus, reason string, logs *servertest.SyncBuffer) metav1.Condition {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cr := b.get(t)
		c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ConditionReady)
		if c != nil && cr.Status.ObservedGeneration == gen && c.ObservedGeneration == gen && c.Status == status && c.Reason == reason {
			return *c
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v; want generation %d, Ready %s %s\n%s", cr.Status, gen, status, reason, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// vouchServer is a Source feeding a Holder that a real HTTPS server
// (Gatekeeper provider) decides under.
type vouchServer struct {
	holder *reload.Holder
	stack  *servertest.Stack
	logs   *servertest.SyncBuffer
}

// startVouch starts a Source with c and opts (Build and Namespace set
// here) and a server deciding under its generations; both stop when the
// test ends.
func startVouch(t *testing.T, c client.WithWatch, opts kube.Options) *vouchServer {
	t.Helper()
	logs := &servertest.SyncBuffer{}
	logger := server.NewLogger(logs, slog.LevelDebug)
	holder, err := reload.NewHolder(nil, reload.HolderOptions{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	opts.Client, opts.Namespace, opts.Logger = c, ns, logger
	opts.Build = func(_ context.Context, s *kube.Snapshot) (*reload.Generation, error) {
		comp := s.Composition
		hash := "kubernetes:" + s.Fingerprint
		ex, err := engine.NewNamespaceExecutors(engine.NamespaceOptions{
			Base: vouch.Executor{Store: st, Verifiers: comp.Verifiers, Discovery: vouch.Discovery{CosignTags: handlesCosign(comp.Verifiers)}}, Policy: comp.Policy, PolicyHash: hash,
			Namespace: func(ns string) (*engine.Namespace, error) {
				n, err := comp.Namespace(ns)
				if n == nil || err != nil {
					return nil, err
				}
				return &engine.Namespace{Policy: n.Policy, Verifiers: n.Verifiers, Fingerprint: n.Fingerprint}, nil
			},
		})
		if err != nil {
			return nil, err
		}
		return &reload.Generation{Executors: ex, PolicyHash: hash}, nil
	}
	src, err := kube.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stack := servertest.Start(t, servertest.Options{Engine: func(o *engine.Options) { o.Executor = holder.Executor }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Start(ctx, holder) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &vouchServer{holder: holder, stack: stack, logs: logs}
}

// handlesCosign reports whether a verifier handles cosign's types: then
// the Executor also reads cosign's "sha256-<hex>.sig" and ".att" tags, as
// vouch serve's does (cmd/vouch/flags.go).
func handlesCosign(verifiers []vouch.Verifier) bool {
	for _, v := range verifiers {
		if v.Handles(vouch.CosignSignatureType) || v.Handles(vouch.CosignAttestationType) {
			return true
		}
	}
	return false
}

// allowed asks the Gatekeeper provider about image; the test fails when
// vouch cannot decide.
func (v *vouchServer) allowed(t *testing.T, image string) bool {
	t.Helper()
	ok, undecided := v.verdict(t, image)
	if undecided != "" {
		t.Fatalf("verify %s: %s\n%s", image, undecided, v.logs.String())
	}
	return ok
}

// verdict asks the Gatekeeper provider about image: whether it is
// allowed, or why vouch could not decide.
func (v *vouchServer) verdict(t *testing.T, image string) (bool, string) {
	t.Helper()
	status, body := v.stack.Post(t, "/gatekeeper/v1/verify", map[string]any{
		"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
		"request": map[string]any{"keys": []string{image}},
	})
	var out struct {
		Response struct {
			SystemError string `json:"systemError"`
			Items       []struct {
				Error string `json:"error"`
				Value struct {
					IsSuccess bool `json:"isSuccess"`
				} `json:"value"`
			} `json:"items"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &out); err != nil || status != 200 || out.Response.SystemError != "" || len(out.Response.Items) != 1 {
		t.Fatalf("verify %s: %d %s (%v)\n%s", image, status, body, err, v.logs.String())
	}
	return out.Response.Items[0].Value.IsSuccess, out.Response.Items[0].Error
}

// decide asks the Gatekeeper provider about key ("[namespace]image"
// chooses the namespace's policy) and returns the verdict and its reason;
// the test fails when vouch cannot decide.
func (v *vouchServer) decide(t *testing.T, key string) (bool, string) {
	t.Helper()
	ok, reason, undecided := v.gatekeeper(t, key)
	if undecided != "" {
		t.Fatalf("verify %s: %s\n%s", key, undecided, v.logs.String())
	}
	return ok, reason
}

// gatekeeper asks the Gatekeeper provider about key: whether it is
// allowed and why, or why vouch could not decide.
func (v *vouchServer) gatekeeper(t *testing.T, key string) (bool, string, string) {
	t.Helper()
	status, body := v.stack.Post(t, "/gatekeeper/v1/verify", map[string]any{
		"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
		"request": map[string]any{"keys": []string{key}},
	})
	var out struct {
		Response struct {
			SystemError string `json:"systemError"`
			Items       []struct {
				Error string `json:"error"`
				Value struct {
					IsSuccess bool   `json:"isSuccess"`
					Reason    string `json:"reason"`
				} `json:"value"`
			} `json:"items"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &out); err != nil || status != 200 || out.Response.SystemError != "" || len(out.Response.Items) != 1 {
		t.Fatalf("verify %s: %d %s (%v)\n%s", key, status, body, err, v.logs.String())
	}
	item := out.Response.Items[0]
	return item.Value.IsSuccess, item.Value.Reason, item.Error
}

// waitVerdict asks about image until its verdict is allowed, and returns
// the time since since.
func (v *vouchServer) waitVerdict(t *testing.T, image string, allowed bool, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, undecided := v.verdict(t, image)
		if undecided == "" && ok == allowed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still not allowed=%v after %v\n%s", image, allowed, time.Since(since), v.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(since)
}

// TestSource runs the Kubernetes source on a real kube-apiserver and etcd,
// as the service account of deploy/rbac (impersonated), with a real HTTPS
// Gatekeeper provider deciding under what it serves and real Notary
// Project signatures: a valid ClusterVouchConfig becomes Ready and serves;
// invalid ones say why, naming the field, while the last good one keeps
// serving; a rotated trust Secret changes the next verdicts without a
// restart; replicas that agree never write the status.
func TestSource(t *testing.T) {
	b := newBed(t)
	// Before its ClusterVouchConfig exists, vouch serves nothing (no
	// executor: the engine fails closed); its watch sees the resource
	// created.
	sa := b.as(t, serviceAccount)
	v := startVouch(t, sa, kube.Options{})
	time.Sleep(300 * time.Millisecond)
	if v.holder.Current() != nil || !strings.Contains(v.logs.String(), "ClusterVouchConfig vouch not found") {
		t.Fatalf("without a ClusterVouchConfig: generation %v\n%s", v.holder.Current(), v.logs.String())
	}
	b.create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notation-trust-policy"}, Data: map[string]string{"trustpolicy.json": trustPolicy}})
	b.setSecret(t, "notation-ca", map[string][]byte{"ca.crt": b.ca1})
	start := time.Now()
	gen := b.setSpec(t, validSpec)
	b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
	t.Logf("created → Ready=True in %v (before the %v interval: the watch saw it)", time.Since(start), reload.DefaultInterval)
	if v.holder.Current() == nil {
		t.Fatal("Ready=True but no generation serves")
	}
	if !v.allowed(t, b.image("one")) || v.allowed(t, b.image("unsigned")) || v.allowed(t, b.image("two")) {
		t.Fatal("under CA1: want one allowed, unsigned and two denied")
	}

	t.Run("replicas do not fight", func(t *testing.T) {
		before := b.get(t).ResourceVersion
		// A second replica, checking every 100 ms, agrees: it writes
		// nothing.
		r2 := startVouch(t, sa, kube.Options{Interval: 100 * time.Millisecond, NoWatch: true})
		r2.waitVerdict(t, b.image("one"), true, time.Now())
		time.Sleep(time.Second)
		if after := b.get(t); after.ResourceVersion != before {
			t.Errorf("the ClusterVouchConfig was written (resourceVersion %s → %s): %+v", before, after.ResourceVersion, after.Status)
		}
	})

	var invalidSince metav1.Time
	for _, tc := range []struct {
		name, spec, reason, message string
	}{
		{"a missing key", strings.Replace(validSpec, "key: ca.crt", "key: nope", 1), kube.ReasonInvalidReference,
			"spec.trustStores[0].refs[0]: secret vouch/notation-ca has no key nope"},
		{"a missing Secret", strings.Replace(validSpec, "name: notation-ca", "name: cosign-pub", 1), kube.ReasonInvalidReference,
			"spec.trustStores[0].refs[0]: secret vouch/cosign-pub not found"},
		{"a Secret vouch may not read", strings.Replace(validSpec, "name: notation-ca", "name: other", 1), kube.ReasonInvalidReference,
			"spec.trustStores[0].refs[0]: secret vouch/other may not be read by vouch (forbidden"},
		{"a spec vouch's validation refuses", validSpec + "    sbom: {}\n", kube.ReasonInvalidSpec,
			"spec.verifiers[0].sbom: set, but the verifier's type is notation"},
		{"a certificate that does not parse", strings.Replace(validSpec, "key: ca.crt", "key: junk", 1), kube.ReasonBuildFailed,
			"spec.verifiers[0] (notation)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.setSecret(t, "other", map[string][]byte{"ca.crt": b.ca1})
			b.setSecret(t, "notation-ca", map[string][]byte{"ca.crt": b.ca1, "junk": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")})
			gen := b.setSpec(t, tc.spec)
			c := b.waitStatus(t, gen, metav1.ConditionFalse, tc.reason, v.logs)
			t.Logf("Ready=False %s: %s", c.Reason, c.Message)
			if !strings.Contains(c.Message, tc.message) {
				t.Errorf("message %q, want it to contain %q", c.Message, tc.message)
			}
			// lastTransitionTime moves on True → False only.
			if invalidSince.IsZero() {
				invalidSince = c.LastTransitionTime
			} else if !c.LastTransitionTime.Equal(&invalidSince) {
				t.Errorf("lastTransitionTime moved from %v to %v while Ready stayed False", invalidSince, c.LastTransitionTime)
			}
			if !v.allowed(t, b.image("one")) || v.allowed(t, b.image("two")) {
				t.Error("the last good configuration (CA1) no longer serves")
			}
		})
	}
	// lastTransitionTime has a resolution of a second.
	time.Sleep(time.Until(invalidSince.Add(1100 * time.Millisecond)))
	gen = b.setSpec(t, validSpec)
	if c := b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs); !c.LastTransitionTime.After(invalidSince.Time) {
		t.Errorf("lastTransitionTime did not move on False → True: %v, False since %v", c.LastTransitionTime, invalidSince)
	}

	t.Run("rotate the trust Secret", func(t *testing.T) {
		// Each rotation, timed from the Secret's update to the first
		// verdict under the new CA; the image of the old CA, allowed and
		// cached a moment ago, is then denied.
		var watched []time.Duration
		cas := [][]byte{b.ca2, b.ca1}
		images := []string{"two", "one"}
		for i := range 6 {
			next, old := images[i%2], images[(i+1)%2]
			if !v.allowed(t, b.image(old)) {
				t.Fatalf("%s not allowed before the rotation", old)
			}
			start := time.Now()
			b.setSecret(t, "notation-ca", map[string][]byte{"ca.crt": cas[i%2]})
			watched = append(watched, v.waitVerdict(t, b.image(next), true, start))
			if v.allowed(t, b.image(old)) {
				t.Errorf("rotation %d: %s, signed under the old CA, still allowed", i, old)
			}
		}
		sort.Slice(watched, func(i, j int) bool { return watched[i] < watched[j] })
		t.Logf("reload latency with watches (interval %v): min %v, median %v, max %v over %d rotations",
			reload.DefaultInterval, watched[0], watched[len(watched)/2], watched[len(watched)-1], len(watched))

		// The periodic check alone: a replica without watches, every
		// second, sees the rotation within the interval.
		periodic := startVouch(t, sa, kube.Options{Interval: time.Second, NoWatch: true})
		periodic.waitVerdict(t, b.image("one"), true, time.Now())
		var polled []time.Duration
		for i := range 4 {
			next := images[i%2]
			start := time.Now()
			b.setSecret(t, "notation-ca", map[string][]byte{"ca.crt": cas[i%2]})
			polled = append(polled, periodic.waitVerdict(t, b.image(next), true, start))
		}
		sort.Slice(polled, func(i, j int) bool { return polled[i] < polled[j] })
		t.Logf("reload latency without watches (interval 1s): min %v, median %v, max %v over %d rotations",
			polled[0], polled[len(polled)/2], polled[len(polled)-1], len(polled))
	})

	// The service account was refused nothing but the Secret "other", and
	// could not list Secrets.
	for _, line := range strings.Split(v.logs.String(), "\n") {
		if strings.Contains(line, "cannot watch") && !strings.Contains(line, `"name":"other"`) {
			t.Errorf("a watch was refused: %s", line)
		}
	}
	var secrets corev1.SecretList
	if err := sa.List(context.Background(), &secrets, client.InNamespace(ns)); err == nil {
		t.Error("the service account may list Secrets: the RBAC is not the least")
	}
}
