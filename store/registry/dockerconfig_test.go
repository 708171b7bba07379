package registry_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/vouch-project/vouch/store/registry"
)

func TestParseDockerConfig(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, doc string
		want      map[string]auth.Credential
		wantErr   string
	}{
		{name: "auth", doc: `{"auths":{"reg.example:5000":{"auth":"` + b64("alice:pw:with:colons") + `"}}}`,
			want: map[string]auth.Credential{"reg.example:5000": {Username: "alice", Password: "pw:with:colons"}}},
		{name: "username and password", doc: `{"auths":{"reg.example":{"username":"bob","password":"pw"}}}`,
			want: map[string]auth.Credential{"reg.example": {Username: "bob", Password: "pw"}}},
		{name: "URL keys", doc: `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("carol:pw") + `"},"http://reg.example:5000/v2/":{"registrytoken":"tok"}}}`,
			want: map[string]auth.Credential{"index.docker.io": {Username: "carol", Password: "pw"}, "reg.example:5000": {AccessToken: "tok"}}},
		{name: "identity token", doc: `{"auths":{"reg.example":{"username":"<token>","identitytoken":"refresh"}}}`,
			want: map[string]auth.Credential{"reg.example": {RefreshToken: "refresh"}}},
		{name: "empty entry skipped", doc: `{"auths":{"reg.example":{}}}`, want: map[string]auth.Credential{}},
		{name: "no auths", doc: `{}`, want: map[string]auth.Credential{}},
		{name: "credsStore", doc: `{"auths":{},"credsStore":"desktop"}`, wantErr: "credsStore and credHelpers name programs to run"},
		{name: "credHelpers", doc: `{"credHelpers":{"reg.example":"ecr-login"}}`, wantErr: "credsStore and credHelpers"},
		{name: "bad base64", doc: `{"auths":{"reg.example":{"auth":"s3cret!!"}}}`, wantErr: `auths["reg.example"]: auth: not base64`},
		{name: "no colon", doc: `{"auths":{"reg.example":{"auth":"` + b64("s3cret") + `"}}}`, wantErr: "not base64 of username:password"},
		{name: "not JSON", doc: `{"auths":`, wantErr: "docker config: not JSON"},
		{name: "wrong type", doc: `{"auths":{"reg.example":{"password":42}}}`, wantErr: "want string"},
		{name: "bad key", doc: `{"auths":{"":{"auth":"` + b64("a:b") + `"}}}`, wantErr: "is not a registry host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := registry.ParseDockerConfig([]byte(tc.doc))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error discloses a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d hosts, want %d", len(got), len(tc.want))
			}
			for h, c := range tc.want {
				if got[h] != c {
					t.Errorf("%s: got %+v, want %+v", h, got[h], c)
				}
			}
		})
	}
	if _, err := registry.ParseDockerConfig(make([]byte, registry.MaxDockerConfigBytes+1)); err == nil {
		t.Error("an oversized config was accepted")
	}
}

func FuzzParseDockerConfig(f *testing.F) {
	f.Add([]byte(`{"auths":{"reg.example":{"auth":"YTpi"}}}`))
	f.Add([]byte(`{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		creds, err := registry.ParseDockerConfig(data)
		if err == nil && registry.CredentialsID(creds) == "" && len(creds) > 0 {
			t.Fatal("a non-empty set has no ID")
		}
	})
}

func TestCredentialsID(t *testing.T) {
	a := map[string]auth.Credential{"h": {Username: "u", Password: "p"}}
	b := map[string]auth.Credential{"h": {Username: "u", Password: "q"}}
	if registry.CredentialsID(nil) != "" || registry.CredentialsID(a) == registry.CredentialsID(b) ||
		registry.CredentialsID(a) != registry.CredentialsID(map[string]auth.Credential{"h": {Username: "u", Password: "p"}}) {
		t.Error("CredentialsID does not tell sets apart")
	}
	if strings.Contains(registry.CredentialsID(a), "p") && len(registry.CredentialsID(a)) != 64 {
		t.Error("not a hash")
	}
}
