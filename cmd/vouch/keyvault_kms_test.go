//go:build kms

package main

import (
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/trust/kms"
	"github.com/vouch-project/vouch/trust/kms/kmstest"
)

// cosignBed is an image signed by the real cosign 2.6.5 CLI with key A and
// another signed with key B, on go-containerregistry's registry.
type cosignBed struct {
	host       string
	good, bad  string // signed with A, with B
	pubA, pubB crypto.PublicKey
}

func newCosignBed(t *testing.T) *cosignBed {
	t.Helper()
	reg := testbed.GGCR(t, nil)
	dir := t.TempDir()
	env := []string{"COSIGN_PASSWORD=", "COSIGN_YES=true", "HOME=" + dir, "COSIGN_EXPERIMENTAL=0"}
	cosign := func(args ...string) {
		t.Helper()
		if out, err := testbed.RunErr(env, testbed.Bin(t, "cosign"), args...); err != nil {
			t.Fatalf("cosign %v: %v\n%s", args, err, out)
		}
	}
	pub := func(prefix string) crypto.PublicKey {
		keys, err := trust.ParsePublicKeys(readFile(t, prefix+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		return keys[0]
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cosign("generate-key-pair", "--output-key-prefix", a)
	cosign("generate-key-pair", "--output-key-prefix", b)
	p := testbed.NewPusher(t, reg.Host, "kms/app")
	bed := &cosignBed{host: reg.Host, pubA: pub(a), pubB: pub(b)}
	bed.good = fmt.Sprintf("%s/kms/app@%s", reg.Host, p.Image("good", "good").Digest)
	bed.bad = fmt.Sprintf("%s/kms/app@%s", reg.Host, p.Image("bad", "bad").Digest)
	cosign("sign", "--key", a+".key", "--tlog-upload=false", "--allow-http-registry", bed.good)
	cosign("sign", "--key", b+".key", "--tlog-upload=false", "--allow-http-registry", bed.bad)
	return bed
}

// kmsConfig writes a config whose cosign verifier trusts the key uri.
func kmsConfig(t *testing.T, uri string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vouch.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`version: v1
registries: {plainHTTP: true}
verifiers:
  - name: cosign
    type: cosign
    cosign:
      keys: {kms: [%q]}
      ignoreTlogUnsafe: true
`, uri)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKMSCosignVerify: recorded exchange (kmstest.AWS answers AWS KMS's
// documented GetPublicKey and DescribeKey; no real AWS here). `vouch
// verify` trusts the key awskms:///alias/release: a cosign signature made
// with it is allowed, one made with another key is denied; with the key
// missing from the KMS, or the KMS unreachable, vouch cannot decide (exit
// 2) and names the key: it trusts nothing it could not fetch.
func TestKMSCosignVerify(t *testing.T) {
	bed := newCosignBed(t)
	aws := kmstest.NewAWS(t)
	for k, v := range aws.Env() {
		t.Setenv(k, v)
	}
	aws.SetKey("alias/release", bed.pubA)
	config := kmsConfig(t, "awskms:///alias/release")
	for _, tt := range []struct {
		ref    string
		want   int
		reason string
	}{
		{bed.good, exitAllowed, "signed by key awskms:///alias/release"},
		{bed.bad, exitDenied, "no matching key"},
	} {
		code, out, stderr := vouchRun(t, "verify", "--config", config, "-o", "json", tt.ref)
		if code != tt.want || !strings.Contains(out, tt.reason) {
			t.Errorf("%s: exit %d, want %d with %q\n%s%s", tt.ref, code, tt.want, tt.reason, out, stderr)
		}
	}
	// The quick flag takes the URI as cosign's --key does.
	if code, out, stderr := vouchRun(t, "verify", "--plain-http", "--cosign-key", "awskms:///alias/release", bed.good); code != exitAllowed {
		t.Errorf("--cosign-key awskms:///alias/release: exit %d, want %d\n%s%s", code, exitAllowed, out, stderr)
	}
	if code, out, stderr := vouchRun(t, "verify", "--plain-http", "--cosign-key", "awskms:///alias/release", bed.bad); code != exitDenied {
		t.Errorf("--cosign-key awskms:///alias/release, other key: exit %d, want %d\n%s%s", code, exitDenied, out, stderr)
	}
	// A key the KMS does not have when vouch starts: a configuration
	// error, nothing verified (a key deleted while vouch serve runs is
	// trusted no more from the next refresh: TestKeyVaultNotation).
	aws.SetKey("alias/release", nil)
	if code, out, stderr := vouchRun(t, "verify", "--config", config, bed.good); code != exitUndecided || !strings.Contains(stderr, "NotFoundException") {
		t.Errorf("key deleted: exit %d, want %d naming the KMS's answer\n%s%s", code, exitUndecided, out, stderr)
	}
	aws.SetKey("alias/release", bed.pubA)
	t.Setenv("AWS_ENDPOINT_URL_KMS", "http://"+testbed.FreeAddr(t)) // nothing listens
	code, out, stderr := vouchRun(t, "verify", "--config", config, bed.good)
	if code != exitUndecided || !strings.Contains(stderr, "awskms:///alias/release") {
		t.Errorf("KMS unreachable: exit %d, want %d naming the key\n%s%s", code, exitUndecided, out, stderr)
	}
}

// TestKMSServeRotation: recorded exchange (kmstest.Vault answers Vault's
// documented transit read-key exchange; the real Vault server is not
// built here, docs/key-management.md). `vouch serve` trusts
// hashivault://release; rotating the key in Vault to key B is picked up by
// the next refresh (--key-refresh) and config reload: B's signature is
// allowed and A's denied, without a restart. A refresh that fails (Vault
// down) keeps the key fetched before.
func TestKMSServeRotation(t *testing.T) {
	bed := newCosignBed(t)
	vault := kmstest.NewVault(t)
	t.Setenv("VAULT_ADDR", vault.URL)
	t.Setenv("VAULT_TOKEN", vault.Token)
	vault.SetKey("release", bed.pubA)
	s := startServe(t, "--config", kmsConfig(t, "hashivault://release"), "--config-reload-interval", "100ms", "--key-refresh", "200ms")
	if !s.allowed(t, bed.good) || s.allowed(t, bed.bad) {
		t.Fatal("under key A: want good allowed, bad denied")
	}
	rotated := time.Now()
	vault.SetKey("release", bed.pubB)
	latency := s.waitFor(t, bed.bad, true, rotated)
	t.Logf("rotation seen %v after it happened (refresh 200ms, reload 100ms)", latency.Round(time.Millisecond))
	if s.allowed(t, bed.good) {
		t.Fatal("after the rotation to key B, key A's signature is still allowed")
	}
	vault.Close()
	time.Sleep(time.Second) // several failed refreshes
	if !s.allowed(t, bed.bad) {
		t.Fatal("with Vault down, the key fetched before is no longer trusted")
	}
	if !strings.Contains(s.logs.String(), "keeping the material fetched before") {
		t.Errorf("no failed refresh logged:\n%s", s.logs.String())
	}
	if strings.Contains(s.logs.String(), vault.Token) {
		t.Error("the logs show the Vault token")
	}
}

// TestKeyVaultNotation: recorded exchange (kmstest.KeyVault answers Azure
// Key Vault's documented Get Certificate and the Microsoft identity
// platform's federated client-credentials grant, over TLS; no real Azure
// here). `vouch serve` trusts for Notary Project signatures the CA
// certificate held in the vault, read with Azure workload identity (the
// webhook's environment: AZURE_CLIENT_ID, AZURE_TENANT_ID,
// AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST): a notation-go
// signature under that CA is allowed; once the certificate is deleted
// from the vault, the next refresh denies it.
func TestKeyVaultNotation(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	signer := testbed.NewNotationSigner(t)
	p := testbed.NewPusher(t, reg.Host, "akv/app")
	signed := p.Image("signed", "signed")
	signer.Sign(p, signed)
	image := fmt.Sprintf("%s/akv/app@%s", reg.Host, signed.Digest)

	kv := kmstest.NewKeyVault(t)
	for k, v := range kv.WorkloadIdentityEnv(t, t.TempDir()) {
		t.Setenv(k, v)
	}
	keyVaultOptions = kms.Options{HTTPClient: kv.Client}
	t.Cleanup(func() { keyVaultOptions = kms.Options{} })
	certs, err := trust.ParsePEMCertificates(readFile(t, signer.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	kv.SetCertificate("notation-ca", certs[0])

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "trustpolicy.json"), []byte(`{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:akv"],"trustedIdentities":["*"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "vouch.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`version: v1
trustStores:
  - name: ca:akv
    azureKeyVault:
      vaultURI: %s/
      certificates: [{name: notation-ca}]
verifiers:
  - {name: notation, type: notation, notation: {trustPolicy: trustpolicy.json}}
`, kv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--config", config, "--config-reload-interval", "100ms", "--key-refresh", "200ms")
	if !s.allowed(t, image) {
		t.Fatalf("signed under the vault's CA: denied\n%s", s.logs.String())
	}
	if kv.TokenRequests.Load() == 0 {
		t.Fatal("no workload-identity token was exchanged")
	}
	removed := time.Now()
	kv.SetCertificate("notation-ca", nil)
	latency := s.waitFor(t, image, false, removed)
	t.Logf("certificate removal seen %v after it happened (refresh 200ms, reload 100ms)", latency.Round(time.Millisecond))
}
