//go:build kms

package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/internal/testbed/testca"
	"github.com/vouch-project/vouch/trust/kms/kmstest"
)

// TestKMSAzureCLI: recorded exchange (kmstest.KeyVault answers Azure Key
// Vault's documented Get Key with its authentication challenge, and the
// Microsoft identity platform's OpenID discovery and federated
// client-credentials grant; it is a stand-in of those documented
// exchanges, not Azure). sigstore's kms/azure client builds the vault's
// URL itself (azurekms://VAULT/KEY → https://VAULT/), takes no transport,
// and its credential (azidentity's DefaultAzureCredential, given the
// public cloud explicitly, so AZURE_AUTHORITY_HOST is ignored) asks
// https://login.microsoftonline.com for tokens; azkeys only sends a token
// to a vault whose host ends with the challenge's resource
// (vault.azure.net). So the real `vouch` binary (-tags kms) runs in a
// mount namespace of its own whose /etc/hosts sends
// vouchtest.vault.azure.net and login.microsoftonline.com to 127.0.0.1,
// where the stand-in serves TLS on port 443 with a certificate of a test
// CA that only that process trusts (SSL_CERT_FILE). It authenticates with
// Azure workload identity. A cosign CLI signature made with the key the
// vault holds (EC, then RSA) is allowed, one made with another key
// denied; a URI without a version follows the key's newest version, one
// with a version keeps it; with the key missing from the vault, vouch
// cannot decide (exit 2). Needs root
// (unshare --mount, mount --bind, port 443).
func TestKMSAzureCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the vouch process gets its own /etc/hosts (unshare --mount, mount --bind) and the stand-in listens on 127.0.0.1:443, the port sigstore's kms/azure client always uses")
	}
	const vault, authority = "vouchtest.vault.azure.net", "login.microsoftonline.com"
	dir := t.TempDir()
	ca, err := testca.New(testca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testca.CertOptions{Subject: testca.Subject("vouch tests", vault), DNSNames: []string{vault, authority},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := ca.WriteCertFile(caFile); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:443")
	if err != nil {
		t.Fatalf("the Key Vault stand-in must listen on 127.0.0.1:443 (sigstore's client names no port): %v", err)
	}
	kv := kmstest.NewKeyVaultOn(t, ln, leaf.TLSCertificate())
	kv.Authority = "https://" + authority

	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n127.0.0.1 "+vault+" "+authority+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare (util-linux), which runs vouch with its own /etc/hosts: %v", err)
	}
	if out, err := exec.Command(unshare, "--mount", "--", "/bin/sh", "-c", `mount --bind "$0" /etc/hosts`, hosts).CombinedOutput(); err != nil {
		t.Fatalf("cannot give a process its own /etc/hosts (unshare --mount and mount --bind need root): %v\n%s", err, out)
	}
	env := []string{"SSL_CERT_FILE=" + caFile, "SSL_CERT_DIR=" + dir, "HOME=" + dir,
		"AZURE_CLIENT_SECRET=", "AZURE_CLIENT_CERTIFICATE_PATH=", "AZURE_USERNAME="}
	for k, v := range kv.WorkloadIdentityEnv(t, dir) {
		if k != "AZURE_AUTHORITY_HOST" { // ignored by sigstore's client; the hosts file stands in for it
			env = append(env, k+"="+v)
		}
	}
	bin := testbed.Vouch(t, "kms")
	vouch := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(unshare, append([]string{"--mount", "--", "/bin/sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, hosts, bin}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &exit):
			return exit.ExitCode(), string(out)
		}
		t.Fatalf("vouch %v: %v\n%s", args, err, out)
		return -1, ""
	}

	bed := newCosignBed(t)
	const uri = "azurekms://" + vault + "/cosign"
	kv.SetKey("cosign", bed.pubA)
	config := kmsConfig(t, uri)
	for _, tt := range []struct {
		ref    string
		want   int
		reason string
	}{
		{bed.good, exitAllowed, "signed by key " + uri},
		{bed.bad, exitDenied, "no matching key"},
	} {
		if code, out := vouch("verify", "--config", config, "-o", "json", tt.ref); code != tt.want || !strings.Contains(out, tt.reason) {
			t.Errorf("%s: exit %d, want %d with %q\n%s", tt.ref, code, tt.want, tt.reason, out)
		}
	}
	if kv.TokenRequests.Load() == 0 {
		t.Error("no workload-identity token was exchanged")
	}
	// A new version (key B): the URI without a version follows it, one
	// naming the first version keeps key A.
	kv.SetKey("cosign", bed.pubB)
	if code, out := vouch("verify", "--config", config, bed.bad); code != exitAllowed {
		t.Errorf("latest version is key B: %s exit %d, want %d\n%s", bed.bad, code, exitAllowed, out)
	}
	pinned := uri + "/" + kmstest.KeyVersion(0)
	if code, out := vouch("verify", "--config", kmsConfig(t, pinned), "-o", "json", bed.good); code != exitAllowed || !strings.Contains(out, "signed by key "+pinned) {
		t.Errorf("%s (key A): exit %d, want %d\n%s", pinned, code, exitAllowed, out)
	}
	// An RSA key (kty RSA), imported into cosign and signing the good
	// image too.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile := filepath.Join(dir, "rsa.pem")
	if err := os.WriteFile(rsaFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cosignEnv := []string{"COSIGN_PASSWORD=", "COSIGN_YES=true", "HOME=" + dir, "COSIGN_EXPERIMENTAL=0"}
	for _, args := range [][]string{
		{"import-key-pair", "--key", rsaFile, "--output-key-prefix", filepath.Join(dir, "rsa")},
		{"sign", "--key", filepath.Join(dir, "rsa.key"), "--tlog-upload=false", "--allow-http-registry", bed.good},
	} {
		if out, err := testbed.RunErr(cosignEnv, testbed.Bin(t, "cosign"), args...); err != nil {
			t.Fatalf("cosign %v: %v\n%s", args, err, out)
		}
	}
	kv.SetKey("cosign-rsa", &rsaKey.PublicKey)
	rsaConfig := kmsConfig(t, "azurekms://"+vault+"/cosign-rsa")
	if code, out := vouch("verify", "--config", rsaConfig, bed.good); code != exitAllowed {
		t.Errorf("RSA key: %s exit %d, want %d\n%s", bed.good, code, exitAllowed, out)
	}
	if code, out := vouch("verify", "--config", rsaConfig, bed.bad); code != exitDenied {
		t.Errorf("RSA key: %s exit %d, want %d\n%s", bed.bad, code, exitDenied, out)
	}
	// A key the vault does not have: nothing verified, the vault's answer
	// named.
	kv.SetKey("cosign", nil)
	if code, out := vouch("verify", "--config", config, bed.good); code != exitUndecided || !strings.Contains(out, "KeyNotFound") {
		t.Errorf("key deleted: exit %d, want %d naming the vault's answer\n%s", code, exitUndecided, out)
	}
}
