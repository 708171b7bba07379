package engine_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
)

// TestCredentialScope: with credentials that travel with requests
// (registry.WithCredentials), a request with the registry's credentials is
// allowed; afterwards, with its tag resolution and its verdict cached, a
// request without them is not answered from those caches, by tag or by
// digest: it is undecided with the registry's refusal. The verdict itself
// is shared: a second request with credentials (other ones, also valid)
// gets the cached verdict without a verification.
func TestCredentialScope(t *testing.T) {
	const user, password = "alice", "pw"
	reg := testbed.GGCR(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, pw, ok := r.BasicAuth(); r.URL.Path != "/v2/" && (!ok || u != user || (pw != password && pw != password+"2")) {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	p := testbed.NewPusher(t, reg.Host, "private/app")
	p.Repo.Client = &auth.Client{Credential: auth.StaticCredential(reg.Host, auth.Credential{Username: user, Password: password})}
	img := p.Image("v1", "private")
	p.Attach(img, goodType, "text/plain", []byte("good"))

	st, err := registry.New(registry.Options{PlainHTTP: true, DockerConfig: writeEmptyDockerConfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	v := vouch.VerifierFunc{VerifierName: "test", ArtifactTypes: []string{goodType},
		Func: func(context.Context, *vouch.VerifyRequest) (vouch.Result, error) {
			calls++
			return vouch.Result{Outcome: vouch.Passed, Reason: "good"}, nil
		}}
	exec := &vouch.Executor{Store: st, Verifiers: []vouch.Verifier{v}, Policy: policy.Default([]string{"test"})}
	e, err := engine.New(engine.Options{
		Executor:        func(context.Context, string) (*vouch.Executor, string) { return exec, "h" },
		CredentialScope: registry.Scope,
	})
	if err != nil {
		t.Fatal(err)
	}
	with := func(pw string) context.Context {
		return registry.WithCredentials(t.Context(), registry.NewRequestCredentials(map[string]auth.Credential{reg.Host: {Username: user, Password: pw}}))
	}
	tag, byDigest := reg.Host+"/private/app:v1", reg.Host+"/private/app@"+img.Digest.String()

	r, err := e.Verify(with(password), "team-a", tag)
	if err != nil || r.Verdict != vouch.Allowed {
		t.Fatalf("with credentials: %v %v", r, err)
	}
	for name, ctx := range map[string]context.Context{"without credentials": t.Context(), "with wrong ones": with("wrong")} {
		for _, image := range []string{tag, byDigest} {
			r, err := e.Verify(ctx, "team-b", image)
			if err == nil || r.Verdict == vouch.Allowed || !strings.Contains(err.Error(), "authentication failed for "+reg.Host) {
				t.Errorf("%s, %s: %v %v, want undecided with the registry's refusal", name, image, r.Verdict, err)
			}
		}
	}
	for _, image := range []string{tag, byDigest} {
		if r, err := e.Verify(with(password+"2"), "team-c", image); err != nil || r.Verdict != vouch.Allowed {
			t.Errorf("with other valid credentials, %s: %v %v", image, r, err)
		}
	}
	if calls != 1 {
		t.Errorf("%d verifications, want 1: the verdict is shared by requests that can read the image", calls)
	}
}

// writeEmptyDockerConfig writes a Docker config without credentials, so
// that the test does not read the user's.
func writeEmptyDockerConfig(t *testing.T) string {
	t.Helper()
	path := t.TempDir() + "/config.json"
	if err := os.WriteFile(path, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
