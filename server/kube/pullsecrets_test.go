package kube_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vouch-project/vouch/server/admission"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/store/registry"
)

// TestPullSecrets reads pods' pull secrets as vouch's service account:
// refused without deploy/rbac/pull-secrets, read with it; the pod's own
// secrets, else its ServiceAccount's, in the pod's namespace only.
func TestPullSecrets(t *testing.T) {
	b := newBed(t)
	const host = "registry.example:5000"
	dockerConfig := func(user string) []byte {
		return []byte(`{"auths":{"` + host + `":{"username":"` + user + `","password":"s3cret"}}}`)
	}
	for _, n := range []string{"team-a", "team-b"} {
		b.create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	b.create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig("alice")}})
	b.create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "sa-cred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig("bob")}})
	b.create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "opaque"}, Data: map[string][]byte{"x": []byte("s3cret")}})
	b.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "default"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "sa-cred"}}})

	scope := func(ps *kube.PullSecrets, p admission.PullSecrets) (string, error) {
		ctx, err := ps.Credentials(context.Background(), p)
		return registry.Scope(ctx, host), err
	}
	newPS := func() *kube.PullSecrets {
		ps, err := kube.NewPullSecrets(kube.PullSecretsOptions{Client: b.as(t, serviceAccount)})
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	pod := admission.PullSecrets{Namespace: "team-a", ServiceAccount: "default", Names: []string{"regcred"}}

	got, err := scope(newPS(), pod)
	if got != "" || err == nil || !strings.Contains(err.Error(), "Secret team-a/regcred may not be read by vouch") {
		t.Fatalf("without the ClusterRole: scope %q, err %v; want none and forbidden", got, err)
	}

	b.apply(t, filepath.Join("..", "..", "deploy", "rbac", "pull-secrets", "clusterrole.yaml"))
	// The authorizer sees new RBAC objects through its informers: a moment.
	var ps *kube.PullSecrets
	var alice string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ps = newPS()
		if alice, err = scope(ps, pod); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if alice == "" || err != nil {
		t.Fatalf("the pod's pull secret: scope %q, err %v", alice, err)
	}
	bob, err := scope(ps, admission.PullSecrets{Namespace: "team-a", ServiceAccount: "default"})
	if bob == "" || bob == alice || err != nil {
		t.Fatalf("the ServiceAccount's pull secret: scope %q (the pod's %q), err %v", bob, alice, err)
	}
	if got, err := scope(ps, admission.PullSecrets{Namespace: "team-a", ServiceAccount: "default", Names: []string{"missing", "regcred"}}); got != alice || err != nil {
		t.Errorf("a missing secret before regcred: scope %q, err %v; want regcred's", got, err)
	}
	got, err = scope(ps, admission.PullSecrets{Namespace: "team-a", ServiceAccount: "default", Names: []string{"opaque"}})
	if got != "" || err == nil || !strings.Contains(err.Error(), `Secret team-a/opaque is of type "Opaque"`) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("an Opaque secret: scope %q, err %v", got, err)
	}
	for _, p := range []admission.PullSecrets{
		{Namespace: "team-b", ServiceAccount: "default", Names: []string{"regcred"}},
		{Namespace: "team-b", ServiceAccount: "default"},
	} {
		if got, err := scope(ps, p); got != "" || err != nil {
			t.Errorf("team-b %+v: scope %q, err %v; want none: team-a's secrets are not team-b's", p, got, err)
		}
	}
}
