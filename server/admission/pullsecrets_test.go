package admission_test

import (
	"slices"
	"testing"

	"github.com/vouch-project/vouch/server/admission"
)

func TestPodPullSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, kind, object string
		want               admission.PullSecrets
		ok, wantErr        bool
	}{
		{name: "pod", kind: "Pod", object: `{"spec":{"serviceAccountName":"builder","imagePullSecrets":[{"name":"a"},{"name":""},{"name":"b"}]}}`,
			want: admission.PullSecrets{Namespace: "ns", ServiceAccount: "builder", Names: []string{"a", "b"}}, ok: true},
		{name: "default service account", kind: "Pod", object: `{"spec":{"containers":[]}}`,
			want: admission.PullSecrets{Namespace: "ns", ServiceAccount: "default"}, ok: true},
		{name: "deployment", kind: "Deployment", object: `{"spec":{"template":{"spec":{"imagePullSecrets":[{"name":"a"}]}}}}`,
			want: admission.PullSecrets{Namespace: "ns", ServiceAccount: "default", Names: []string{"a"}}, ok: true},
		{name: "no pod spec", kind: "Deployment", object: `{"spec":{}}`},
		{name: "unsupported kind", kind: "ConfigMap", object: `{}`, wantErr: true},
		{name: "malformed", kind: "Pod", object: `{"spec":{"imagePullSecrets":"a"}}`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := admission.PodPullSecrets(tc.kind, "ns", []byte(tc.object))
			if (err != nil) != tc.wantErr || ok != tc.ok {
				t.Fatalf("ok %v err %v", ok, err)
			}
			if got.Namespace != tc.want.Namespace || got.ServiceAccount != tc.want.ServiceAccount || !slices.Equal(got.Names, tc.want.Names) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
