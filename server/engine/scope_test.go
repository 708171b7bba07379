package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
)

// TestOutOfScopeImagesAreDeniedBeforeAnyRequest: in the server, an image
// that no scope of the namespace's policy covers is denied before its tag
// is resolved, in a composition of the cluster's policy with a tenant's as
// well. Its registry, a real one on 127.0.0.1 that counts connections,
// gets none; an image in scope on the same registry does reach it.
func TestOutOfScopeImagesAreDeniedBeforeAnyRequest(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	testbed.NewPusher(t, reg.Host, "team/app").Image("v1", "scoped")
	counted := testbed.ServeCounted(t, testbed.Relay(reg.Host))
	req := []policy.Requirement{{ArtifactType: "application/vnd.test.sig"}}
	cluster, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: "team", Repositories: []string{counted.Host + "/team/*"}, Require: req}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := policy.New(policy.Config{Scopes: []policy.Scope{{Name: "extra", Repositories: []string{counted.Host + "/other/*"}, Require: req}}}, nil, policy.AllowUncovered())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		pol  vouch.Policy
	}{
		{"cluster", cluster},
		{"composed", policy.All(policy.Part{Name: "cluster", Policy: cluster}, policy.Part{Name: "tenant", Policy: tenant})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := registry.New(registry.Options{PlainHTTP: true}) // its own connections
			if err != nil {
				t.Fatal(err)
			}
			exec := &vouch.Executor{Store: st, Policy: tt.pol}
			e, err := engine.New(engine.Options{
				Executor:        func(context.Context, string) (*vouch.Executor, string) { return exec, tt.name },
				CredentialScope: func(context.Context, string) string { return "" }, // digests are resolved too
			})
			if err != nil {
				t.Fatal(err)
			}
			before := counted.Conns()
			for _, image := range []string{counted.Host + "/other/app:v1", counted.Host + "/x@sha256:" + strings.Repeat("0", 64)} {
				r, err := e.Verify(context.Background(), "ns", image)
				if err != nil {
					t.Fatalf("%s: %v", image, err)
				}
				if r.Verdict != vouch.Denied || !strings.Contains(r.Reason, "no policy scope covers") {
					t.Fatalf("%s: %s: %s", image, r.Verdict, r.Reason)
				}
			}
			if n := counted.Conns() - before; n != 0 {
				t.Fatalf("out-of-scope images made %d connections, want 0", n)
			}
			r, err := e.Verify(context.Background(), "ns", counted.Host+"/team/app:v1")
			if err != nil || r.Verdict != vouch.Denied || !strings.Contains(r.Reason, `scope "team"`) {
				t.Fatalf("in scope: %v, %+v", err, r)
			}
			if counted.Conns() == before {
				t.Fatal("the in-scope image made no connection")
			}
		})
	}
}
