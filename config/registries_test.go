package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/trust"
)

func TestRegistryCredentials(t *testing.T) {
	ref := &trust.Ref{Kind: trust.KindSecret, Namespace: "vouch", Name: "pull", Key: ".dockerconfigjson"}
	resolver := func(doc string) trust.Resolver {
		return trust.ResolverFunc(func(r trust.Ref, max int64) ([]byte, error) {
			if r != *ref {
				return nil, errors.New("unexpected reference")
			}
			return []byte(doc), nil
		})
	}
	for _, tc := range []struct {
		name     string
		ref      *trust.Ref
		r        trust.Resolver
		wantHost string
		wantErr  string
	}{
		{name: "none"},
		{name: "auths", ref: ref, r: resolver(`{"auths":{"reg.example":{"username":"u","password":"s3cret"}}}`), wantHost: "reg.example"},
		{name: "helpers", ref: ref, r: resolver(`{"credsStore":"desktop"}`), wantErr: "spec.registries.dockerConfigRef: secret vouch/pull key .dockerconfigjson: docker config: credsStore and credHelpers"},
		{name: "malformed", ref: ref, r: resolver(`{"auths":{"reg.example":{"auth":"s3cret"}}}`), wantErr: "spec.registries.dockerConfigRef: secret vouch/pull key .dockerconfigjson: docker config: auths[\"reg.example\"]: auth: not base64"},
		{name: "no resolver", ref: ref, wantErr: "spec.registries.dockerConfigRef: secret vouch/pull key .dockerconfigjson: secret and configMap references need"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := config.Spec{Registries: config.Registries{DockerConfigRef: tc.ref}}
			creds, err := s.RegistryCredentials(tc.r, "spec.")
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("err = %v, want %q without the secret", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantHost == "" && creds != nil || tc.wantHost != "" && creds[tc.wantHost].Password != "s3cret" {
				t.Fatalf("credentials for %v, want %q", len(creds), tc.wantHost)
			}
		})
	}
}

// TestNamedRegistries: the hosts a config names, for vouch serve's
// Targets: scope patterns with a host, and insecure registries.
func TestNamedRegistries(t *testing.T) {
	var s config.Spec
	s.Registries.Insecure = []string{"Insecure.Example:5000"}
	s.Policy = &policy.Config{Scopes: []policy.Scope{{Name: "a", Repositories: []string{
		"*", "oci-layout:*", "registry.kube-system.svc:5000/*", "REG.example/team/app", "library/*", "alpine", "localhost/x", "127.0.0.1:5000/*",
	}}}}
	got := s.NamedRegistries()
	want := []string{"registry.kube-system.svc:5000", "reg.example", "localhost", "127.0.0.1:5000", "insecure.example:5000"}
	if !slices.Equal(got, want) {
		t.Fatalf("NamedRegistries() = %q, want %q", got, want)
	}
}
