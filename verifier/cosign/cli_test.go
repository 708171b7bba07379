package cosign_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/cosign"
)

// TestCosignCLI signs with the real cosign 2.6.5 in every layout it writes
// (the .sig and .att tags, OCI 1.1 referrers, Sigstore bundles) and checks
// that `cosign verify` / `cosign verify-attestation` and vouch's Executor,
// with the default policy, give the same verdict on both registries.
func TestCosignCLI(t *testing.T) {
	ctx := context.Background()
	bin := testbed.Bin(t, "cosign")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "COSIGN_PASSWORD=", "COSIGN_YES=true", "XDG_CONFIG_HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf")}
	key, other := filepath.Join(dir, "cosign"), filepath.Join(dir, "other")
	testbed.Run(t, env, "cosign", "generate-key-pair", "--output-key-prefix", key)
	testbed.Run(t, env, "cosign", "generate-key-pair", "--output-key-prefix", other)
	sbom := filepath.Join(dir, "sbom.spdx.json")
	if err := os.WriteFile(sbom, []byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app","dataLicense":"CC0-1.0",
	  "documentNamespace":"https://example.com/app","creationInfo":{"created":"2024-01-01T00:00:00Z","creators":["Tool: test"]},"packages":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// cosign 2.6 verifies bundles only with a trusted root; key-signed
	// bundles without log entries need nothing in it.
	emptyRoot := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(emptyRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	quick := cosign.KeyConfig([]string{key + ".pub"})
	withAtt := func(types ...string) cosign.Config {
		c := cosign.KeyConfig([]string{key + ".pub"})
		c.Attestations = &cosign.Attestations{PredicateTypes: types}
		return c
	}
	annotated := func(v string) cosign.Config {
		c := cosign.KeyConfig([]string{key + ".pub"})
		c.Annotations = map[string]string{"team": v}
		return c
	}
	configs := map[string]cosign.Config{
		"key": quick, "team-blue": annotated("blue"), "team-red": annotated("red"),
		"att-spdx": withAtt("spdxjson"), "att-slsa": withAtt("slsaprovenance"),
	}
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	// vouchAllows runs the Executor with one verifier and the default
	// policy.
	vouchAllows := func(t *testing.T, ref, name string) (bool, string) {
		t.Helper()
		v, err := cosign.New(name, configs[name])
		if err != nil {
			t.Fatal(err)
		}
		exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: policy.Default([]string{name}), Discovery: vouch.Discovery{CosignTags: true}}
		r, err := exec.Verify(ctx, testbed.Ref(t, ref))
		if err != nil {
			t.Fatal(err)
		}
		return r.Verdict == vouch.Allowed, r.Reason
	}
	verify := []string{"verify", "--key", key + ".pub", "--insecure-ignore-tlog=true", "--allow-http-registry"}
	attest := []string{"verify-attestation", "--key", key + ".pub", "--insecure-ignore-tlog=true", "--allow-http-registry"}
	bundle := []string{"--new-bundle-format", "--trusted-root", emptyRoot}
	experimental := append([]string{"COSIGN_EXPERIMENTAL=1"}, env...)

	type check struct {
		env      []string
		args     []string // cosign's verification, without the reference
		verifier string
		allowed  bool
		reason   string // a substring of vouch's reason
	}
	cases := []struct {
		name  string
		sign  [][]string // cosign commands, without the reference
		env   []string
		check []check
	}{{
		name: "tag layout",
		sign: [][]string{{"sign", "--key", key + ".key", "--tlog-upload=false", "--allow-http-registry", "-a", "team=blue"}},
		check: []check{
			{args: verify, verifier: "key", allowed: true, reason: "signed by key"},
			{args: append(verify, "-a", "team=blue"), verifier: "team-blue", allowed: true},
			{args: append(verify, "-a", "team=red"), verifier: "team-red", allowed: false, reason: "annotation team is blue, want red"},
		},
	}, {
		name: "OCI 1.1 referrer",
		env:  experimental,
		sign: [][]string{{"sign", "--key", key + ".key", "--tlog-upload=false", "--allow-http-registry", "--registry-referrers-mode=oci-1-1"}},
		check: []check{
			{env: experimental, args: append(verify, "--experimental-oci11"), verifier: "key", allowed: true, reason: "signed by key"},
		},
	}, {
		name: "attestation, tag layout",
		sign: [][]string{{"attest", "--key", key + ".key", "--tlog-upload=false", "--allow-http-registry", "--type", "spdxjson", "--predicate", sbom}},
		check: []check{
			{args: append(attest, "--type", "spdxjson"), verifier: "att-spdx", allowed: true, reason: "attestation https://spdx.dev/Document signed by key"},
			{args: append(attest, "--type", "slsaprovenance"), verifier: "att-slsa", allowed: false, reason: "not accepted"},
		},
	}, {
		name: "Sigstore bundle",
		sign: [][]string{{"sign", "--key", key + ".key", "--tlog-upload=false", "--allow-http-registry", "--new-bundle-format"}},
		check: []check{
			{args: append(verify, bundle...), verifier: "key", allowed: true, reason: "signed by key"},
		},
	}, {
		name: "attestation bundle",
		sign: [][]string{{"attest", "--key", key + ".key", "--tlog-upload=false", "--allow-http-registry", "--new-bundle-format", "--type", "spdxjson", "--predicate", sbom}},
		check: []check{
			{args: append(append(attest, bundle...), "--type", "spdxjson"), verifier: "att-spdx", allowed: true, reason: "attestation https://spdx.dev/Document signed by key"},
			{args: append(append(attest, bundle...), "--type", "slsaprovenance"), verifier: "att-slsa", allowed: false, reason: "not accepted"},
		},
	}, {
		name:  "unsigned",
		check: []check{{args: verify, verifier: "key", allowed: false, reason: "found no referrers"}},
	}, {
		name:  "wrong key",
		sign:  [][]string{{"sign", "--key", other + ".key", "--tlog-upload=false", "--allow-http-registry"}},
		check: []check{{args: verify, verifier: "key", allowed: false, reason: "no matching key"}},
	}}

	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					repo := "cosign/cli" + string(rune('a'+i))
					img := testbed.NewPusher(t, reg.Host, repo).Image("", reg.Name+" cosign CLI "+c.name)
					ref := reg.Host + "/" + repo + "@" + img.Digest.String()
					for _, s := range c.sign {
						start := time.Now()
						testbed.Run(t, append(c.env, env...), "cosign", append(s, ref)...)
						t.Logf("cosign %s: %s", s[0], time.Since(start))
					}
					for _, ch := range c.check {
						start := time.Now()
						out, err := testbed.RunErr(append(ch.env, env...), bin, append(ch.args, ref)...)
						cosignOK := err == nil
						mid := time.Now()
						allowed, reason := vouchAllows(t, ref, ch.verifier)
						t.Logf("cosign %s, vouch %s", mid.Sub(start), time.Since(mid))
						t.Logf("cosign %s: ok=%v; vouch %s: allowed=%v: %s", strings.Join(ch.args[:1], " "), cosignOK, ch.verifier, allowed, reason)
						if cosignOK != ch.allowed {
							t.Errorf("cosign %s: ok=%v, want %v\n%s", strings.Join(ch.args, " "), cosignOK, ch.allowed, out)
						}
						if allowed != cosignOK {
							t.Errorf("vouch (%s) allowed=%v but cosign ok=%v: %s", ch.verifier, allowed, cosignOK, reason)
						}
						if !strings.Contains(reason, ch.reason) {
							t.Errorf("vouch (%s) reason %q, want it to contain %q", ch.verifier, reason, ch.reason)
						}
					}
				})
			}
		})
	}
}
