package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/server/engine"
)

// namedPolicy is a policy that allows, saying its name.
func namedPolicy(name string) vouch.Policy {
	return vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
		return vouch.Decision{Verdict: vouch.Allowed, Reason: name}, nil
	})
}

// policyName returns the name a namedPolicy says.
func policyName(t *testing.T, ex *vouch.Executor) string {
	t.Helper()
	if ex == nil || ex.Policy == nil {
		t.Fatalf("executor %+v", ex)
	}
	d, err := ex.Policy.Decide(context.Background(), vouch.Reference{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d.Reason
}

// TestNamespaceExecutors: without namespace policies every namespace gets
// the one policy and hash; with them, each namespace gets its own policy,
// built once, and a hash of its own; requests without a namespace get the
// one policy.
func TestNamespaceExecutors(t *testing.T) {
	base := vouch.Executor{Concurrency: 3}
	t.Run("one policy", func(t *testing.T) {
		n, err := engine.NewNamespaceExecutors(engine.NamespaceOptions{Base: base, Policy: namedPolicy("all"), PolicyHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		first, _ := n.Executor("")
		for _, ns := range []string{"", "team-a", "team-b"} {
			ex, hash := n.Executor(ns)
			if ex != first || hash != "h" || policyName(t, ex) != "all" || ex.Concurrency != 3 {
				t.Fatalf("%q: %s %+v", ns, hash, ex)
			}
		}
	})
	t.Run("per namespace", func(t *testing.T) {
		built := map[string]int{}
		n, err := engine.NewNamespaceExecutors(engine.NamespaceOptions{Base: base, Policy: namedPolicy("all"), PolicyHash: "h",
			NamespacePolicy: func(ns string) (vouch.Policy, error) {
				built[ns]++
				if ns == "broken" {
					return nil, errors.New("no policy")
				}
				return namedPolicy("ns " + ns), nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		if built["default"] != 1 {
			t.Fatalf("the default namespace's policy was built %d times at start", built["default"])
		}
		if ex, hash := n.Executor(""); hash != "h" || policyName(t, ex) != "all" {
			t.Fatalf("no namespace: %s %s", hash, policyName(t, ex))
		}
		for range 2 {
			for _, ns := range []string{"team-a", "team-b"} {
				ex, hash := n.Executor(ns)
				if hash != "h/ns="+ns || policyName(t, ex) != "ns "+ns || ex.Concurrency != 3 {
					t.Fatalf("%s: %s %s", ns, hash, policyName(t, ex))
				}
			}
		}
		if built["team-a"] != 1 || built["team-b"] != 1 {
			t.Fatalf("policies built %v, want once per namespace", built)
		}
		// A policy that cannot be built: no executor, fail closed.
		if ex, hash := n.Executor("broken"); ex != nil || hash != "h/ns=broken" {
			t.Fatalf("broken: %s %+v", hash, ex)
		}
		// Past the bound, executors are built per request.
		for i := range engine.MaxNamespaceExecutors {
			n.Executor(fmt.Sprintf("ns-%d", i))
		}
		n.Executor("late")
		n.Executor("late")
		if built["late"] != 2 || built["team-a"] != 1 {
			t.Fatalf("past the bound: late built %d times, team-a %d", built["late"], built["team-a"])
		}
	})
	t.Run("tenants", func(t *testing.T) {
		verifier := func(name string) vouch.Verifier { return vouch.VerifierFunc{VerifierName: name} }
		base := vouch.Executor{Concurrency: 3, Verifiers: []vouch.Verifier{verifier("cluster")}}
		built := map[string]int{}
		n, err := engine.NewNamespaceExecutors(engine.NamespaceOptions{Base: base, Policy: namedPolicy("all"), PolicyHash: "h",
			Namespace: func(ns string) (*engine.Namespace, error) {
				built[ns]++
				switch ns {
				case "team-a":
					return &engine.Namespace{Policy: namedPolicy("team-a"), Verifiers: []vouch.Verifier{verifier("team-a/x/v")}, Fingerprint: "fp"}, nil
				case "broken":
					return nil, errors.New("no policy")
				case "no-policy":
					return &engine.Namespace{}, nil
				}
				return nil, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		all, _ := n.Executor("")
		for range 2 {
			// A namespace that adds nothing shares everything with requests
			// without a namespace, its cache entries too.
			if ex, hash := n.Executor("team-b"); ex != all || hash != "h" {
				t.Fatalf("team-b: %s %+v", hash, ex)
			}
			ex, hash := n.Executor("team-a")
			if hash != "h/ns=team-a/fp" || policyName(t, ex) != "team-a" || len(ex.Verifiers) != 2 || ex.Verifiers[1].Name() != "team-a/x/v" || ex.Concurrency != 3 {
				t.Fatalf("team-a: %s %+v", hash, ex)
			}
		}
		if built["team-a"] != 1 || built["team-b"] != 1 || len(base.Verifiers) != 1 {
			t.Fatalf("built %v; base verifiers %d", built, len(base.Verifiers))
		}
		for _, ns := range []string{"broken", "no-policy"} {
			if ex, hash := n.Executor(ns); ex != nil || hash != "h/ns="+ns {
				t.Fatalf("%s: %s %+v", ns, hash, ex)
			}
		}
		_, err = engine.NewNamespaceExecutors(engine.NamespaceOptions{Base: base, Policy: namedPolicy("all"), PolicyHash: "h",
			Namespace:       func(string) (*engine.Namespace, error) { return nil, nil },
			NamespacePolicy: func(string) (vouch.Policy, error) { return nil, nil }})
		if err == nil {
			t.Fatal("both hooks accepted")
		}
	})
	t.Run("errors at start", func(t *testing.T) {
		_, err := engine.NewNamespaceExecutors(engine.NamespaceOptions{Base: base, Policy: namedPolicy("all"), PolicyHash: "h",
			NamespacePolicy: func(string) (vouch.Policy, error) { return nil, errors.New("bad scope") }})
		if err == nil || err.Error() != "bad scope" {
			t.Fatalf("a broken namespace policy at start: %v", err)
		}
		for _, o := range []engine.NamespaceOptions{{PolicyHash: "h"}, {Policy: namedPolicy("all")}} {
			if _, err := engine.NewNamespaceExecutors(o); err == nil {
				t.Fatalf("%+v accepted", o)
			}
		}
	})
}
