package config_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/trust"
)

const vaultDoc = `version: v1
trustStores:
  - name: ca:akv
    azureKeyVault:
      vaultURI: https://acme.vault.azure.net/
      certificates: [{name: ca}, {name: old, version: v7}]
verifiers:
  - name: c
    type: cosign
    cosign: {keys: {kms: ['awskms:///alias/release', 'hashivault://k']}, ignoreTlogUnsafe: true}
`

// TestVaultURIs: the key-vault material a file names, in document order;
// custom resources refuse it, for now.
func TestVaultURIs(t *testing.T) {
	f, err := config.Parse([]byte(vaultDoc), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://acme.vault.azure.net/certificates/ca", "https://acme.vault.azure.net/certificates/old/v7", "awskms:///alias/release", "hashivault://k"}
	if got := f.VaultURIs(); !slices.Equal(got, want) {
		t.Fatalf("VaultURIs = %q, want %q", got, want)
	}
	spec := f.Spec
	err = spec.Validate(config.FormCluster, "spec.")
	if err == nil || !strings.Contains(err.Error(), "spec.trustStores[0].azureKeyVault: key vaults are read from a config file only") {
		t.Fatalf("ClusterVouchConfig with azureKeyVault: err = %v", err)
	}
	spec.TrustStores = nil
	err = spec.Validate(config.FormTenant, "spec.")
	if err == nil || !strings.Contains(err.Error(), "spec.verifiers[0].cosign.keys.kms: KMS keys are read from a config file only") {
		t.Fatalf("VouchConfig with keys.kms: err = %v", err)
	}
}

// TestVaultBuild: Build reads key-vault material through the File's
// Vault: without one it is refused (trust.ErrNoVault); a failure names the
// field; a key the service says is gone is left out (the verifier then
// trusts nothing), and the fingerprint follows the material.
func TestVaultBuild(t *testing.T) {
	doc := "version: v1\nverifiers:\n  - {name: c, type: cosign, cosign: {keys: {kms: ['awskms:///alias/release']}, ignoreTlogUnsafe: true}}\n"
	f, err := config.Parse([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Build(); !errors.Is(err, trust.ErrNoVault) {
		t.Fatalf("no Vault: err = %v, want ErrNoVault", err)
	}
	f.Vault = trust.VaultFunc(func(uri string, _ int64) ([]byte, error) { return nil, fmt.Errorf("%s: connection refused", uri) })
	if _, _, err := f.Build(); err == nil || !strings.Contains(err.Error(), "verifiers[0].cosign.keys.kms[0]: awskms:///alias/release: connection refused") {
		t.Fatalf("failing Vault: err = %v", err)
	}
	fp1, _ := f.Fingerprint()
	f.Vault = trust.VaultFunc(func(uri string, _ int64) ([]byte, error) { return nil, fmt.Errorf("%s: %w", uri, trust.ErrGone) })
	if _, _, err := f.Build(); err != nil {
		t.Fatalf("gone key: err = %v, want a verifier that trusts nothing", err)
	}
	if fp2, _ := f.Fingerprint(); fp2 == fp1 {
		t.Fatal("the fingerprint does not follow the material")
	}
}
