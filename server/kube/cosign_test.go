package kube_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/internal/servertest"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/server/reload"
	"github.com/vouch-project/vouch/store/registry"
)

// cosignKeySpec trusts the cosign public key of the Secret cosign-pub
// (named in deploy/rbac/role.yaml), for signatures made with
// --tlog-upload=false.
const cosignKeySpec = `
verifiers:
  - name: cosign
    type: cosign
    cosign:
      keys:
        refs: [{kind: Secret, name: cosign-pub, key: cosign.pub}]
      ignoreTlogUnsafe: true
`

// startCosign is startVouch with cosign's discovery: the Executor also
// reads cosign's "sha256-<hex>.sig" tags, as vouch serve's does when a
// verifier handles cosign's types (cmd/vouch/flags.go).
func startCosign(t *testing.T, c client.WithWatch, opts kube.Options) *vouchServer {
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
			Base: vouch.Executor{Store: st, Verifiers: comp.Verifiers, Discovery: vouch.Discovery{CosignTags: true}}, Policy: comp.Policy, PolicyHash: hash,
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

// grantTrust lets vouch's service account read more Secrets and
// ConfigMaps of its namespace, as deploy/rbac/role.yaml says to: a copy of
// its Role and RoleBinding, named vouch-trust-cosign, listing these.
func (b *bed) grantTrust(t *testing.T, secrets, configMaps []string) {
	t.Helper()
	path := filepath.Join("..", "..", "deploy", "rbac", "role.yaml")
	for _, doc := range strings.Split(string(readFile(t, path)), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		u.SetName("vouch-trust-cosign")
		switch u.GetKind() {
		case "Role":
			rules, _ := u.Object["rules"].([]any)
			for _, r := range rules {
				rule := r.(map[string]any)
				names := []any{}
				list := secrets
				if rule["resources"].([]any)[0] == "configmaps" {
					list = configMaps
				}
				for _, n := range list {
					names = append(names, n)
				}
				rule["resourceNames"] = names
			}
		case "RoleBinding":
			if err := unstructured.SetNestedField(u.Object, "vouch-trust-cosign", "roleRef", "name"); err != nil {
				t.Fatal(err)
			}
		}
		b.create(t, &u)
	}
}

// setConfigMap creates or updates a ConfigMap of vouch's namespace.
func (b *bed) setConfigMap(t *testing.T, name string, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	var cm corev1.ConfigMap
	if err := b.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		b.create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data})
		return
	}
	cm.Data = data
	if err := b.admin.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
}

// cosignCLI runs the testbed's real cosign with a home of its own.
type cosignCLI struct {
	dir string
	env []string
}

func newCosignCLI(t *testing.T) *cosignCLI {
	t.Helper()
	testbed.Bin(t, "cosign")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	return &cosignCLI{dir: dir, env: []string{"HOME=" + home, "COSIGN_PASSWORD=", "COSIGN_YES=true", "XDG_CONFIG_HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf")}}
}

// keyPair runs `cosign generate-key-pair` and returns the prefix of the
// files it wrote (PREFIX.key, PREFIX.pub).
func (c *cosignCLI) keyPair(t *testing.T, name string) string {
	t.Helper()
	prefix := filepath.Join(c.dir, name)
	testbed.Run(t, c.env, "cosign", "generate-key-pair", "--output-key-prefix", prefix)
	return prefix
}

// sign runs `cosign sign` on ref in its default layout (the .sig tag),
// without the transparency log, with args added.
func (c *cosignCLI) sign(t *testing.T, ref string, args ...string) {
	t.Helper()
	args = append(append([]string{"sign", "--tlog-upload=false", "--allow-http-registry"}, args...), ref)
	testbed.Run(t, c.env, "cosign", args...)
}

// pushImage pushes a small image to repo and returns its reference by
// digest.
func (b *bed) pushImage(t *testing.T, repo, seed string) string {
	t.Helper()
	img := testbed.NewPusher(t, b.host, repo).Image(seed, seed)
	return b.host + "/" + repo + "@" + img.Digest.String()
}

// rotations times n rotations of a trust object: before each, old is
// allowed; set(i) installs the trust of image i%2; the time until the
// image of the old trust is first denied is measured, and then the image
// of the new trust must be allowed.
func rotations(t *testing.T, v *vouchServer, images [2]string, n int, set func(i int)) []time.Duration {
	t.Helper()
	var out []time.Duration
	for i := range n {
		next, old := images[i%2], images[(i+1)%2]
		if !v.allowed(t, old) {
			t.Fatalf("rotation %d: %s not allowed before it", i, old)
		}
		start := time.Now()
		set(i)
		out = append(out, v.waitVerdict(t, old, false, start))
		if !v.allowed(t, next) {
			t.Errorf("rotation %d: %s, signed under the new trust, denied", i, next)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TestCosign runs the Kubernetes source with cosign verifiers whose trust
// comes from the cluster, on a real kube-apiserver and etcd, as the
// service account of deploy/rbac (impersonated), deciding through the
// Gatekeeper provider on real cosign signatures: public keys from a
// Secret (keys.refs) and a rotation of that Secret without a restart; a
// broken reference says Ready=False naming the field.
func TestCosign(t *testing.T) {
	b := newBed(t)
	sa := b.as(t, serviceAccount)
	cli := newCosignCLI(t)

	t.Run("keys from a Secret", func(t *testing.T) {
		k1, k2 := cli.keyPair(t, "k1"), cli.keyPair(t, "k2")
		signed1, signed2 := b.pushImage(t, "kube/cosign", "signed-k1"), b.pushImage(t, "kube/cosign", "signed-k2")
		unsigned := b.pushImage(t, "kube/cosign", "unsigned")
		cli.sign(t, signed1, "--key", k1+".key")
		cli.sign(t, signed2, "--key", k2+".key")
		pub1, pub2 := readFile(t, k1+".pub"), readFile(t, k2+".pub")

		b.setSecret(t, "cosign-pub", map[string][]byte{"cosign.pub": pub1})
		gen := b.setSpec(t, cosignKeySpec)
		v := startCosign(t, sa, kube.Options{})
		b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
		ok, reason := v.decide(t, signed1)
		t.Logf("signed with k1: allowed=%v: %s", ok, reason)
		if !ok {
			t.Fatalf("signed with the Secret's key: denied: %s", reason)
		}
		for _, img := range []string{unsigned, signed2} {
			if ok, reason := v.decide(t, img); ok {
				t.Errorf("%s allowed under k1: %s", img, reason)
			} else {
				t.Logf("%s denied: %s", img, reason)
			}
		}

		lat := rotations(t, v, [2]string{signed2, signed1}, 6, func(i int) {
			b.setSecret(t, "cosign-pub", map[string][]byte{"cosign.pub": [][]byte{pub2, pub1}[i%2]})
		})
		t.Logf("key rotation in the Secret → first denial of the old key's image (watches, interval %v): min %v, median %v, max %v over %d rotations",
			reload.DefaultInterval, lat[0], lat[len(lat)/2], lat[len(lat)-1], len(lat))

		gen = b.setSpec(t, strings.Replace(cosignKeySpec, "key: cosign.pub", "key: nope", 1))
		c := b.waitStatus(t, gen, metav1.ConditionFalse, kube.ReasonInvalidReference, v.logs)
		t.Logf("Ready=False %s: %s", c.Reason, c.Message)
		if want := "spec.verifiers[0].cosign.keys.refs[0]: secret vouch/cosign-pub has no key nope"; c.Message != want {
			t.Errorf("message %q, want %q", c.Message, want)
		}
		if !v.allowed(t, signed1) || v.allowed(t, signed2) {
			t.Error("the last good configuration (k1) no longer serves")
		}
	})
}
