//go:build kubernetes

package main

import (
	"context"
	"encoding/base64"
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
	signer.Sign(p, p.Image("signed", "signed"))
	b.ca = readFile(t, signer.CAFile)
	return b
}

func (b *privateBed) image() string { return b.host + "/private/app:signed" }

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
