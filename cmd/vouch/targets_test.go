package main

import (
	"strings"
	"testing"

	"github.com/vouch-project/vouch/internal/testbed"
)

// TestServeRefusesInternalTargets: vouch serve does not call a loopback,
// link-local or cluster-internal host that an image names unless it is
// named (here by --allow-internal-registry); the registry is a real one
// on 127.0.0.1 behind a relay that counts connections.
func TestServeRefusesInternalTargets(t *testing.T) {
	signer := testbed.NewNotationSigner(t)
	reg := testbed.GGCR(t, nil)
	testbed.NewPusher(t, reg.Host, "t/app").Image("v1", "targets")
	counted := testbed.ServeCounted(t, testbed.Relay(reg.Host))

	s := startServe(t, "--notation-cert", signer.CAFile, "--allow-internal-registry", "registry.example")
	images := []string{counted.Host + "/t/app:v1", "169.254.169.254/x:y", "kubernetes.default.svc/x", "localhost:" + strings.Split(counted.Host, ":")[1] + "/t/app:v1"}
	answers, err := s.verify(images...)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range answers {
		if a.allowed || !strings.Contains(a.err, "refusing to connect to") {
			t.Errorf("%s: allowed %v, error %q; want refused", a.key, a.allowed, a.err)
		}
	}
	if n := counted.Conns(); n != 0 {
		t.Fatalf("%d connections to a loopback registry that the configuration does not name", n)
	}

	named := startServe(t, "--notation-cert", signer.CAFile, "--allow-internal-registry", counted.Host)
	answers, err = named.verify(counted.Host + "/t/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if a := answers[0]; a.allowed || strings.Contains(a.err, "refusing") {
		t.Fatalf("named registry: allowed %v, error %q; want denied after a look (unsigned)", a.allowed, a.err)
	}
	if counted.Conns() == 0 {
		t.Fatal("the named registry was not reached")
	}
}
