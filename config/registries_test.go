package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/config"
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
