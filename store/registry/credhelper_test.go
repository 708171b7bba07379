package registry_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"oras.land/oras-go/v2/registry/remote/auth"

	vouch "github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

// TestCredentialHelper reads from distribution behind htpasswd auth with
// credentials that a real credential helper executable,
// docker-credential-NAME on PATH, hands out through a Docker config's
// credHelpers or credsStore; and checks the errors when the helper fails,
// is missing, prints garbage or hands out a wrong password: each names the
// host and says what went wrong, and none quotes the password.
func TestCredentialHelper(t *testing.T) {
	const user, password = "carol", "helper-Pa55word-9f3e"
	host := distributionWithHtpasswd(t, user, password)
	p := testbed.NewPusher(t, host, "private/helped")
	p.Repo.Client = &auth.Client{Credential: auth.StaticCredential(host, auth.Credential{Username: user, Password: password})}
	subject := p.Image("v1", "behind a credential helper")

	helper := testbed.NewCredentialHelper(t, "vouchtest")
	t.Setenv("PATH", helper.Dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	credHelpers := writeFile(t, "config.json", fmt.Sprintf(`{"credHelpers":{%q:"vouchtest"}}`, host))
	credsStore := writeFile(t, "config.json", `{"credsStore":"vouchtest"}`)
	missing := writeFile(t, "config.json", fmt.Sprintf(`{"credHelpers":{%q:"vouch-no-such-helper"}}`, host))

	for _, tc := range []struct {
		name   string
		config string
		setup  func()
		// err is what the error says; "" for success.
		err []string
	}{
		{name: "credHelpers", config: credHelpers, setup: func() { helper.Serve(map[string][2]string{host: {user, password}}) }},
		{name: "credsStore", config: credsStore, setup: func() { helper.Serve(map[string][2]string{host: {user, password}}) }},
		{name: "wrong password", config: credHelpers, setup: func() { helper.Serve(map[string][2]string{host: {user, "wrong-" + password}}) },
			err: []string{"authentication failed for " + host}},
		{name: "not in the helper", config: credHelpers, setup: func() { helper.Serve(nil) },
			err: []string{"authentication failed for " + host}},
		{name: "helper fails", config: credHelpers, setup: func() { helper.Fail("the keychain is locked") },
			err: []string{"credentials for " + host, "the keychain is locked"}},
		{name: "helper prints garbage", config: credHelpers, setup: func() { helper.Print(`{"Username":7,"Secret":"` + password + `"}`) },
			err: []string{"credentials for " + host, "cannot unmarshal number"}},
		{name: "helper prints a truncated answer", config: credHelpers, setup: func() { helper.Print(`{"Username":"carol","Secret":"` + password) },
			err: []string{"credentials for " + host, "unexpected end of JSON input"}},
		{name: "helper missing", config: missing, setup: func() {},
			err: []string{"credentials for " + host, `"docker-credential-vouch-no-such-helper": executable file not found`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			calls := len(helper.Calls())
			s := newStore(t, registry.Options{PlainHTTP: true, DockerConfig: tc.config})
			_, data, err := open(t, s, host, "private/helped").(vouch.FetchReferencer).FetchReference(t.Context(), "v1")
			if tc.config != missing && len(helper.Calls()) == calls {
				t.Error("the credential helper was not called")
			}
			if len(tc.err) == 0 {
				if err != nil || testbed.Digest(data) != subject.Digest {
					t.Fatalf("FetchReference = %v; want the subject", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("error: %v", err)
			for _, want := range tc.err {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error discloses the password: %v", err)
			}
		})
	}
	// The helper is asked for the host as Docker asks: "host:port".
	for _, c := range helper.Calls() {
		if c != "get "+host {
			t.Errorf("helper call %q, want %q", c, "get "+host)
		}
	}
}
