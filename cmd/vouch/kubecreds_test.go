//go:build kubernetes

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"oras.land/oras-go/v2/registry/remote/auth"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/vouch-project/vouch/api/v1alpha1"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server/admission"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/notation"
)

// kubeEnv is a real kube-apiserver and etcd (envtest) with vouch's CRDs, a
// kubeconfig file of an admin for vouch serve, and a client for the test.
type kubeEnv struct {
	cfg    *rest.Config
	kcPath string
	c      client.WithWatch
}

func startKubeEnv(t *testing.T) *kubeEnv {
	t.Helper()
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
	user, err := env.AddUser(envtest.User{Name: "vouch-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kcPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcPath, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &kubeEnv{cfg: cfg, kcPath: kcPath, c: c}
}

func (k *kubeEnv) create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k.c.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %s: %v", obj.GetName(), err)
	}
}

// privateBed is distribution behind htpasswd (basic auth) holding
// private/app:signed, signed by a notation signer whose CA is ca.
type privateBed struct {
	host, user, password string
	digest               string
	ca                   []byte
}

func newPrivateBed(t *testing.T) *privateBed {
	t.Helper()
	b := &privateBed{user: "alice", password: "s3cret-Pa55word"}
	hash, err := bcrypt.GenerateFromPassword([]byte(b.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(b.user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.host = testbed.DistributionWithHtpasswd(t, htpasswd).Host
	signer := testbed.NewNotationSigner(t)
	p := testbed.NewPusher(t, b.host, "private/app")
	p.Repo.Client = &auth.Client{Credential: auth.StaticCredential(b.host, auth.Credential{Username: b.user, Password: b.password})}
	img := p.Image("signed", "signed")
	signer.Sign(p, img)
	b.digest = img.Digest.String()
	b.ca = readFile(t, signer.CAFile)
	return b
}

func (b *privateBed) image() string { return b.host + "/private/app:signed" }

func (b *privateBed) imageByDigest() string { return b.host + "/private/app@" + b.digest }

// dockerConfigJSON is a .dockerconfigjson for the bed's registry.
func (b *privateBed) dockerConfigJSON(password string) []byte {
	return fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, b.host, base64.StdEncoding.EncodeToString([]byte(b.user+":"+password)))
}

// notationSpec is a ClusterVouchConfig spec trusting ca (from the
// ConfigMap and Secret that createNotationTrust makes) for every image.
func notationSpec() config.Spec {
	nc := notation.Config{TrustPolicyRef: &trust.Ref{Kind: trust.KindConfigMap, Name: "notation-trust-policy", Key: "trustpolicy.json"}}
	return config.Spec{TenantSpec: config.TenantSpec{
		TrustStores: []config.TrustStore{{Name: "ca:test", Refs: []trust.Ref{{Kind: trust.KindSecret, Name: "notation-ca", Key: "ca.crt"}}}},
		Verifiers:   []config.Verifier{{Name: "notation", Type: "notation", Notation: &nc}},
	}}
}

// createNotationTrust creates the namespace vouch with the trust material
// of notationSpec.
func (k *kubeEnv) createNotationTrust(t *testing.T, ca []byte) {
	t.Helper()
	k.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vouch"}})
	files := configFiles("notation", ca)
	k.create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "vouch", Name: "notation-trust-policy"}, Data: map[string]string{"trustpolicy.json": string(files["trustpolicy.json"])}})
	k.create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "vouch", Name: "notation-ca"}, Data: map[string][]byte{"ca.crt": ca}})
}

// TestServeKubernetesDockerConfigRef: a ClusterVouchConfig's
// registries.dockerConfigRef names a kubernetes.io/dockerconfigjson Secret
// whose credentials reach distribution behind htpasswd: the signed image
// there is allowed. A wrong password in the Secret, changed while vouch
// serves, rebuilds the store: the image is then undecided, with the
// registry's 401, and the password is in no answer or log.
func TestServeKubernetesDockerConfigRef(t *testing.T) {
	bed := newPrivateBed(t)
	k := startKubeEnv(t)
	k.createNotationTrust(t, bed.ca)
	pull := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "vouch", Name: "registry-credentials"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: bed.dockerConfigJSON(bed.password)},
	}
	k.create(t, pull)
	spec := notationSpec()
	spec.Registries.DockerConfigRef = &trust.Ref{Kind: trust.KindSecret, Name: "registry-credentials", Key: corev1.DockerConfigJsonKey}
	k.create(t, &v1alpha1.ClusterVouchConfig{ObjectMeta: metav1.ObjectMeta{Name: "vouch"}, Spec: v1alpha1.ClusterVouchConfigSpec{Spec: spec}})

	s := launchServe(t, "--kubernetes", "--kubeconfig", k.kcPath, "--kubernetes-namespace", "vouch")
	s.waitReady(t)
	if !s.allowed(t, bed.image()) {
		t.Fatalf("%s denied with the Secret's credentials\n%s", bed.image(), s.logs.String())
	}

	pull.Data[corev1.DockerConfigJsonKey] = bed.dockerConfigJSON("wrong-" + bed.password)
	if err := k.c.Update(context.Background(), pull); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		a, err := s.verify(bed.image())
		if err != nil {
			t.Fatal(err)
		}
		if a[0].err != "" {
			for _, want := range []string{"authentication failed for " + bed.host, "401"} {
				if !strings.Contains(a[0].err, want) {
					t.Errorf("error %q does not say %q", a[0].err, want)
				}
			}
			if a[0].allowed {
				t.Error("an undecided image is allowed")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %+v a minute after the Secret's password changed\n%s", a[0], s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, secret := range []string{bed.password, base64.StdEncoding.EncodeToString([]byte(bed.user + ":wrong-" + bed.password))} {
		if strings.Contains(s.logs.String(), secret) {
			t.Error("the logs disclose a credential")
		}
	}
}

// admit sends the validating (or mutating) admission webhook a Pod in
// namespace with image, the image pull secrets pullSecrets and the service
// account sa ("" for none), and returns the response.
func (s *served) admit(t *testing.T, endpoint, namespace, image, sa string, pullSecrets ...string) admission.Response {
	t.Helper()
	spec := map[string]any{"containers": []any{map[string]any{"name": "app", "image": image}}}
	if sa != "" {
		spec["serviceAccountName"] = sa
	}
	var refs []any
	for _, n := range pullSecrets {
		refs = append(refs, map[string]any{"name": n})
	}
	if refs != nil {
		spec["imagePullSecrets"] = refs
	}
	pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "app", "namespace": namespace}, "spec": spec})
	review, _ := json.Marshal(admission.Review{APIVersion: admission.APIVersion, Kind: "AdmissionReview", Request: &admission.Request{
		UID: "1", Kind: admission.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: namespace, Name: "app", Operation: "CREATE", Object: pod}})
	resp, err := s.client.Post(s.url+"/admission/v1/"+endpoint, "application/json", bytes.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out admission.Review
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil {
		t.Fatalf("admission answer: %v %+v", err, out)
	}
	return *out.Response
}

// TestServeKubernetesPullSecrets: with --kubernetes-pull-secrets, the
// admission webhook reads a Pod's images with its image pull secrets, or
// its ServiceAccount's, read in its namespace: a Pod in team-a with a pull
// secret for the private registry is allowed. Then, with team-a's tag
// resolution and verdict cached, the same image is denied in team-b (no
// pull secret; by tag and by digest; and naming team-a's Secret, which
// team-b does not have) and to Gatekeeper (no Pod, no pull secret), with
// the registry's refusal; its mutating webhook does not pin it either. A
// Pod in team-c pulling with its ServiceAccount's pull secret is allowed.
func TestServeKubernetesPullSecrets(t *testing.T) {
	bed := newPrivateBed(t)
	k := startKubeEnv(t)
	k.createNotationTrust(t, bed.ca)
	spec := notationSpec()
	k.create(t, &v1alpha1.ClusterVouchConfig{ObjectMeta: metav1.ObjectMeta{Name: "vouch"}, Spec: v1alpha1.ClusterVouchConfigSpec{Spec: spec}})
	pullSecret := func(ns, name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: bed.dockerConfigJSON(bed.password)}}
	}
	for _, ns := range []string{"team-a", "team-b", "team-c"} {
		k.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		k.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}})
	}
	k.create(t, pullSecret("team-a", "regcred"))
	k.create(t, pullSecret("team-c", "builder-pull"))
	k.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "builder"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "builder-pull"}}})

	s := launchServe(t, "--kubernetes", "--kubeconfig", k.kcPath, "--kubernetes-namespace", "vouch", "--kubernetes-pull-secrets")
	s.waitReady(t)
	for _, image := range []string{bed.image(), bed.imageByDigest()} {
		if r := s.admit(t, "validate", "team-a", image, "", "regcred"); !r.Allowed {
			t.Fatalf("team-a with its pull secret, %s: denied: %+v\n%s", image, r.Status, s.logs.String())
		}
	}
	if r := s.admit(t, "mutate", "team-a", bed.image(), "", "regcred"); r.Patch == nil {
		t.Errorf("team-a's image was not pinned: %+v", r)
	}

	denied := func(what string, r admission.Response) {
		t.Helper()
		if r.Allowed || r.Status == nil || !strings.Contains(r.Status.Message, "authentication failed for "+bed.host) {
			t.Errorf("%s: %+v, want denied with the registry's refusal", what, r)
		}
	}
	for _, image := range []string{bed.image(), bed.imageByDigest()} {
		denied("team-b without a pull secret, "+image, s.admit(t, "validate", "team-b", image, ""))
		denied("team-b naming team-a's Secret, "+image, s.admit(t, "validate", "team-b", image, "", "regcred"))
		denied("team-a without its pull secret, "+image, s.admit(t, "validate", "team-a", image, ""))
	}
	if r := s.admit(t, "mutate", "team-b", bed.image(), ""); r.Patch != nil || len(r.Warnings) == 0 {
		t.Errorf("team-b's image was pinned with team-a's resolution: %+v", r)
	}
	if a, err := s.verify(bed.image()); err != nil || a[0].allowed || a[0].err == "" {
		t.Errorf("Gatekeeper (no pull secret): %+v %v, want undecided", a, err)
	}

	if r := s.admit(t, "validate", "team-c", bed.image(), "builder"); !r.Allowed {
		t.Errorf("team-c with its ServiceAccount's pull secret: denied: %+v", r.Status)
	}
	if r := s.admit(t, "validate", "team-c", bed.image(), ""); r.Allowed {
		t.Error("team-c's default ServiceAccount has no pull secret, but the image is allowed")
	}
	if strings.Contains(s.logs.String(), bed.password) {
		t.Error("the logs disclose a credential")
	}
}
