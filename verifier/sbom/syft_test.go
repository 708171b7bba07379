package sbom_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/sbom"
)

// apkInstalled is a small Alpine package database, as apk writes
// /lib/apk/db/installed: what syft catalogs in an Alpine image.
const apkInstalled = `C:Q1Lp0y3J3bQ0rY9qvSTe0nbGZXmuA=
P:musl
V:1.2.5-r0
A:x86_64
S:411297
I:655360
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1712101234
c:6e7e5c5c1ad3db3ab5ba68ac7ee5b4f7e3b4d4b4
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1KyUYkPBOhBfaNGdkPnuMG6pXyqc=

C:Q1o6B6w7m8dVfJ2kL0eYb6kGJ5bIw=
P:busybox
V:1.36.1-r29
A:x86_64
S:509468
I:962560
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1717420156
c:8c24c7e4f8cd2a2ab7d3f6ac7f4b6a7a2b4c0b62
D:so:libc.musl-x86_64.so.1
F:bin
R:busybox
a:0:0:755
Z:Q1Wk7mTC9yRvHfe8o2SDd6JzjTxJE=

C:Q1v8Xa1xX1ZP3oOq2fRmGZcQ1mQ6U=
P:readline
V:8.2.10-r0
A:x86_64
S:120340
I:286720
T:GNU readline library
U:https://tiswww.cwru.edu/php/chet/readline/rltop.html
L:GPL-3.0-or-later
o:readline
m:Natanael Copa <ncopa@alpinelinux.org>
t:1712103000
c:2c7a36b7c3d6fa0b24c2c1e7f3d2f0c9d6b8a4e2
D:so:libc.musl-x86_64.so.1
F:usr
F:usr/lib
R:libreadline.so.8
a:0:0:755
Z:Q1pH+vcbwj1YoJ+2x/Fq3jL2tpz7Y=

`

const osRelease = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
HOME_URL="https://alpinelinux.org/"
`

// layerTar writes a layer holding the Alpine package database and
// os-release.
func layerTar(t *testing.T, path string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range []string{"etc/", "lib/", "lib/apk/", "lib/apk/db/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: time.Unix(1712101234, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"etc/os-release": osRelease, "lib/apk/db/installed": apkInstalled} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1712101234, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs a testbed program in dir with env added, and returns its
// standard output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testbed.Bin(t, name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestSyft verifies SBOMs that the real syft CLI makes: an image is pushed
// with crane, syft scans it from the registry into SPDX and CycloneDX JSON,
// the oras CLI attaches both, and vouch checks them through the Executor
// and the registry store, on both test registries.
func TestSyft(t *testing.T) {
	ctx := context.Background()
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"SYFT_CHECK_FOR_APP_UPDATE=false", "SYFT_REGISTRY_INSECURE_USE_HTTP=true",
				"HOME=" + dir, "XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
			layerTar(t, filepath.Join(dir, "layer.tar"))
			tag := reg.Host + "/demo/img:v1"
			digestRef := strings.TrimSpace(run(t, dir, env, "crane", "append", "--insecure", "-f", "layer.tar", "-t", tag, "--oci-empty-base"))
			if !strings.Contains(digestRef, "@sha256:") {
				t.Fatalf("crane printed %q, want a digest reference", digestRef)
			}
			run(t, dir, env, "syft", "scan", "-q", "registry:"+tag, "-o", "spdx-json=img.spdx.json", "-o", "cyclonedx-json=img.cdx.json")
			spdxDoc, err := os.ReadFile(filepath.Join(dir, "img.spdx.json"))
			if err != nil {
				t.Fatal(err)
			}
			if v := jsonField(t, spdxDoc, "spdxVersion"); v != "SPDX-2.3" {
				t.Errorf("syft wrote spdxVersion %v", v)
			}
			run(t, dir, env, "oras", "attach", "--plain-http", "--artifact-type", sbom.MediaTypeSPDX, digestRef, "img.spdx.json:"+sbom.MediaTypeSPDX)
			run(t, dir, env, "oras", "attach", "--plain-http", "--artifact-type", sbom.MediaTypeCycloneDX, digestRef, "img.cdx.json:"+sbom.MediaTypeCycloneDX)

			ref := testbed.Ref(t, digestRef)
			for _, tc := range []struct {
				name   string
				config sbom.Config
				want   []string
			}{
				{
					name:   "GPL-3.0 and old busybox denied",
					config: sbom.Config{DeniedLicenses: []string{"GPL-3.0-only"}, DeniedPackages: []string{"busybox@<1.36.1-r30"}, MaxAge: "1h"},
					want: []string{
						"failed: SPDX-2.3 SBOM of 4 packages: 2 of 4 packages fail the policy: busybox 1.36.1-r29 (denied package busybox@<1.36.1-r30, compared as generic versions), readline 8.2.10-r0 (denied license GPL-3.0-or-later)",
						"failed: CycloneDX-1.7 SBOM of 6 components: 2 of 6 components fail the policy: busybox 1.36.1-r29 (denied package busybox@<1.36.1-r30, compared as generic versions), readline 8.2.10-r0 (denied license GPL-3.0-or-later)",
					},
				},
				{
					name:   "every package licensed, nothing denied",
					config: sbom.Config{DeniedLicenses: []string{"AGPL-3.0-or-later", "SSPL-1.0"}, RequireLicenses: true, DeniedPackages: []string{"musl@<1.2.4"}, MaxAge: "1h"},
					want: []string{
						"passed: SPDX-2.3 SBOM of 4 packages: no denied license, every package licensed, no denied package, created ",
						"passed: CycloneDX-1.7 SBOM of 6 components: no denied license, every package licensed, no denied package, created ",
					},
				},
			} {
				t.Run(tc.name, func(t *testing.T) {
					v, err := sbom.New("sbom", tc.config)
					if err != nil {
						t.Fatal(err)
					}
					exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: allow}
					report, err := exec.Verify(ctx, ref)
					if err != nil {
						t.Fatal(err)
					}
					got := sbomResults(report.Root)
					if len(got) != 2 {
						t.Fatalf("%d SBOM results, want 2:\n%s", len(got), strings.Join(got, "\n"))
					}
					containsAll(t, got, tc.want...)
				})
			}
		})
	}
}
