package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/vouch-project/vouch/internal/testbed"
)

// TestVerifyCredentialHelper runs the vouch program (built by the test)
// against distribution behind htpasswd auth, with a config file whose
// registries.dockerConfig names a real credential helper executable
// (credHelpers), and a signature made with notation-go: allowed with the
// helper's credentials; a clear error, exit 2, when the helper fails, is
// missing or hands out a wrong password; and the password appears nowhere
// in what vouch prints, the helper's own standard error included.
func TestVerifyCredentialHelper(t *testing.T) {
	const user, password = "dave", "cli-helper-Pa55-77aa"
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := testbed.DistributionWithHtpasswd(t, htpasswd)
	p := testbed.NewPusher(t, reg.Host, "private/app")
	p.Repo.Client = &auth.Client{Credential: auth.StaticCredential(reg.Host, auth.Credential{Username: user, Password: password})}
	img := p.Image("v1", "pulled with a credential helper's password")
	signer := testbed.NewNotationSigner(t)
	signer.Sign(p, img)
	ref := reg.Host + "/private/app@" + img.Digest.String()

	helper := testbed.NewCredentialHelper(t, "vouch-cli-test")
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	config := func(helperName string) string {
		docker := write(helperName+".json", fmt.Sprintf(`{"credHelpers":{%q:%q}}`, reg.Host, helperName))
		return write(helperName+".yaml", fmt.Sprintf("version: v1\nregistries:\n  plainHTTP: true\n  dockerConfig: %s\n", docker))
	}
	withHelper, withMissing := config(helper.Name), config("vouch-no-such-helper")
	bin := testbed.Vouch(t)

	for _, tc := range []struct {
		name, config string
		setup        func()
		code         int
		says         []string
	}{
		{"allowed", withHelper, func() { helper.Serve(map[string][2]string{reg.Host: {user, password}}) }, exitAllowed,
			[]string{"ALLOWED", "1 allowed"}},
		{"wrong password", withHelper, func() { helper.Serve(map[string][2]string{reg.Host: {user, "wrong-" + password}}) }, exitUndecided,
			[]string{"authentication failed for " + reg.Host}},
		{"helper fails", withHelper, func() { helper.Fail("the keychain is locked") }, exitUndecided,
			[]string{"credentials for " + reg.Host + " from the Docker config: the keychain is locked"}},
		{"helper missing", withMissing, func() {}, exitUndecided,
			[]string{`"docker-credential-vouch-no-such-helper": executable file not found`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			cmd := exec.Command(bin, "verify", "--config", tc.config, "--notation-cert", signer.CAFile, ref)
			cmd.Env = append(os.Environ(), "PATH="+helper.Dir+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			t.Logf("exit %d:\n%s", code, out)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, s := range tc.says {
				if !strings.Contains(string(out), s) {
					t.Errorf("the output does not say %q", s)
				}
			}
			if strings.Contains(string(out), password) {
				t.Errorf("the output discloses the password")
			}
		})
	}
}
