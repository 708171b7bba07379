package vouch_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
)

// TestOutOfScopeSubjectMakesNoRequest: a subject that no policy scope
// covers is denied from its reference alone. The registry it names is a
// real one on 127.0.0.1 that counts connections: it gets none. (Before the
// policy could screen references, the executor resolved the tag first,
// five attempts on a host that refused, and answered "could not decide".)
func TestOutOfScopeSubjectMakesNoRequest(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	p := testbed.NewPusher(t, reg.Host, "team/app")
	p.Image("v1", "scoped")
	// The counted host relays to the registry, so that the in-scope case
	// below is a real verification through it.
	counted := testbed.ServeCounted(t, testbed.Relay(reg.Host))
	cfg := policy.Config{Scopes: []policy.Scope{{
		Name: "ours", Repositories: []string{"ghcr.io/org/*", counted.Host + "/team/*"},
		Require: []policy.Requirement{{ArtifactType: "application/vnd.test.sig"}},
	}}}
	pol, err := policy.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	e := &vouch.Executor{Store: st, Policy: pol}

	for _, subject := range []string{counted.Host + "/other/app:v1", counted.Host + "/team-b/app:v1"} {
		r, err := e.Verify(context.Background(), mustRef(t, subject))
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if r.Verdict != vouch.Denied || !strings.Contains(r.Reason, "no policy scope covers "+counted.Host) {
			t.Fatalf("%s: %s: %s, want denied: no policy scope covers it", subject, r.Verdict, r.Reason)
		}
		if r.Root != nil {
			t.Errorf("%s: a graph was walked", subject)
		}
	}
	if n := counted.Conns(); n != 0 {
		t.Fatalf("out-of-scope subjects made %d connections to their registry, want 0", n)
	}

	// In scope, the same host is asked (and the subject, unsigned, denied
	// for its requirement): the count above can fail.
	r, err := e.Verify(context.Background(), mustRef(t, counted.Host+"/team/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != vouch.Denied || !strings.Contains(r.Reason, `scope "ours"`) || r.Root == nil {
		t.Fatalf("in scope: %s: %s, want denied by scope \"ours\" after a walk", r.Verdict, r.Reason)
	}
	if counted.Conns() == 0 {
		t.Fatal("the in-scope subject made no connection")
	}
}

// TestDockerHubNamesMeetOneScope: the spellings of a Docker Hub name that
// Docker treats as one image meet the same policy scope, written either
// way.
func TestDockerHubNamesMeetOneScope(t *testing.T) {
	for _, pattern := range []string{"docker.io/library/*", "index.docker.io/library/*", "docker.io/library/alpine", "INDEX.DOCKER.IO/library/alpine", "alpine"} {
		pol, err := policy.New(policy.Config{Scopes: []policy.Scope{{
			Name: "hub", Repositories: []string{pattern},
			Require: []policy.Requirement{{ArtifactType: "application/vnd.test.sig"}},
		}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		screen := pol.(vouch.Screener)
		for _, subject := range []string{"alpine", "library/alpine:3.20", "docker.io/alpine", "docker.io/library/alpine", "index.docker.io/library/alpine", "index.docker.io/alpine@sha256:" + strings.Repeat("a", 64)} {
			if d, decided := screen.Screen(context.Background(), mustRef(t, subject)); decided {
				t.Errorf("pattern %q, subject %q: out of scope (%s)", pattern, subject, d.Reason)
			}
		}
		if d, decided := screen.Screen(context.Background(), mustRef(t, "ghcr.io/library/alpine")); !decided || d.Verdict != vouch.Denied {
			t.Errorf("pattern %q: ghcr.io/library/alpine is in scope", pattern)
		}
	}
}
