package release

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
)

// Exit codes of vouch verify (docs/cli.md).
const (
	exitAllowed = 0
	exitDenied  = 1
)

// Artifact types the policy requires: a Notary Project signature, a cosign
// signature as an OCI 1.1 referrer (cosign 2 with
// --registry-referrers-mode=oci-1-1), an SPDX SBOM.
const (
	notationSig = "application/vnd.cncf.notary.signature"
	cosignSig   = vouch.CosignSignatureType
	spdx        = "application/spdx+json"
)

// signer is one publisher's keys: a notation test certificate and key in
// its own notation configuration, and a cosign key pair.
type signer struct {
	env       []string // XDG_CONFIG_HOME for notation, COSIGN_PASSWORD
	cert      string   // notation's certificate (PEM)
	cosignKey string   // cosign's private key
	cosignPub string   // cosign's public key
}

func newSigner(t *testing.T, name string) signer {
	t.Helper()
	dir := t.TempDir()
	s := signer{
		env:       []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "COSIGN_PASSWORD=", "COSIGN_YES=true"},
		cert:      filepath.Join(dir, "config", "notation", "localkeys", name+".crt"),
		cosignKey: filepath.Join(dir, "cosign.key"),
		cosignPub: filepath.Join(dir, "cosign.pub"),
	}
	testbed.Run(t, s.env, "notation", "cert", "generate-test", "--default", name)
	testbed.Run(t, s.env, "cosign", "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign"))
	return s
}

// goEnv pins the Go caches of the caller, so that the script's go run
// finds the builds of the tests before it whatever HOME it is given. With
// cold, the build cache is a new, empty one: everything is compiled again.
func goEnv(t *testing.T, cold bool) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	v := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(v) != 3 {
		t.Fatalf("go env: %q", out)
	}
	if cold {
		v[0] = t.TempDir()
	}
	return []string{"GOCACHE=" + v[0], "GOMODCACHE=" + v[1], "GOPATH=" + v[2]}
}

// runScript runs hack/release-image.sh against repo, with s's keys, and
// returns its standard output and error.
func runScript(t *testing.T, s signer, repo, work string, cold bool) (string, string, error) {
	t.Helper()
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack", "release-image.sh"), "--plain-http", "--work", work, "--cosign-key", s.cosignKey, repo)
	cmd.Dir = root
	cmd.Env = append(append(append(os.Environ(), "PATH="+testbed.BinDir()+string(os.PathListSeparator)+os.Getenv("PATH")), goEnv(t, cold)...), s.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("hack/release-image.sh took %s", time.Since(start).Round(time.Second))
	return stdout.String(), stderr.String(), err
}

// release runs hack/release-image.sh against repo and returns the
// reference it printed (REPO@DIGEST) and its work folder. cold: with an
// empty Go build cache (goEnv).
func release(t *testing.T, s signer, repo string, cold bool) (string, string) {
	t.Helper()
	work := filepath.Join(t.TempDir(), "work")
	stdout, stderr, err := runScript(t, s, repo, work, cold)
	if err != nil {
		t.Fatalf("hack/release-image.sh: %v\n%s%s", err, stdout, stderr)
	}
	t.Logf("hack/release-image.sh:\n%s", stderr)
	ref := strings.TrimSpace(stdout)
	if !strings.HasPrefix(ref, repo+"@sha256:") {
		t.Fatalf("hack/release-image.sh printed %q, want %s@sha256:...", ref, repo)
	}
	return ref, work
}

// config writes a vouch config that trusts s's keys for every repository
// under prefix and requires what a vouch release carries: a notation and a
// cosign signature on the image index, and an SPDX SBOM signed by both.
func config(t *testing.T, s signer, prefix string) string {
	t.Helper()
	dir := t.TempDir()
	tp := `{"version":"1.0","trustPolicies":[{"name":"vouch","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:release"],"trustedIdentities":["*"]}]}`
	if err := os.WriteFile(filepath.Join(dir, "trustpolicy.json"), []byte(tp), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`version: v1
registries: {plainHTTP: true}
trustStores: [{name: "ca:release", files: [%q]}]
verifiers:
  - {name: notation, type: notation, notation: {trustPolicy: trustpolicy.json}}
  - {name: cosign, type: cosign, cosign: {keys: {files: [%q]}, ignoreTlogUnsafe: true}}
policy:
  scopes:
    - name: vouch
      repositories: [%q]
      require:
        - artifactType: %s
        - artifactType: %s
        - artifactType: %s
          require:
            - artifactType: %s
            - artifactType: %s
`, s.cert, s.cosignPub, prefix+"/*", notationSig, cosignSig, spdx, notationSig, cosignSig)
	path := filepath.Join(dir, "vouch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// verify runs vouch verify -o json and returns its exit code and report.
func verify(t *testing.T, bin, cfg, ref string) (int, vouch.Reports, string) {
	t.Helper()
	cmd := exec.Command(bin, "verify", "-o", "json", "--config", cfg, ref)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("vouch verify: %v", err)
	}
	var doc vouch.Reports
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil || len(doc.Subjects) != 1 {
		t.Fatalf("vouch verify %s: exit %d, no JSON report of one subject (%v):\n%s%s", ref, code, err, stdout.String(), stderr.String())
	}
	return code, doc, stdout.String() + stderr.String()
}

// TestRelease publishes vouch's image with hack/release-image.sh to a
// distribution registry (referrers by the tag schema) and to
// go-containerregistry's (referrers API), each time from a build of its own,
// and checks that:
//
//   - the two builds of the same tree have the same index digest (the
//     second from Go's build cache, unless VOUCH_RELEASE_COLD_BUILD=1);
//   - vouch verify allows the published index under a policy that wants
//     notation's and cosign's signatures and an SBOM signed by both;
//   - the same index with one byte changed, an unsigned copy, a copy whose
//     SBOM is not signed, and the release under keys it was not signed
//     with are denied;
//   - the amd64 image's binary runs and says its version.
func TestRelease(t *testing.T) {
	bin := testbed.Vouch(t)
	s := newSigner(t, "vouch-release.test")
	stranger := newSigner(t, "someone-else.test")
	digests := map[string]string{}
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			prefix := reg.Host + "/vouch-project"
			repo := prefix + "/vouch"
			// The second build, with VOUCH_RELEASE_COLD_BUILD=1, compiles
			// everything again instead of taking Go's cached binaries
			// (keyed by the same inputs): many minutes on 2 cores.
			cold := reg.Name == "ggcr" && os.Getenv("VOUCH_RELEASE_COLD_BUILD") == "1"
			ref, work := release(t, s, repo, cold)
			digests[reg.Name] = strings.TrimPrefix(ref, repo+"@")
			cfg := config(t, s, prefix)

			code, doc, out := verify(t, bin, cfg, ref)
			if code != exitAllowed || doc.Verdict != vouch.Allowed {
				t.Fatalf("the release %s: exit %d, verdict %s, want allowed:\n%s", ref, code, doc.Verdict, out)
			}
			tag := versionOf(t, work)
			if pushed := strings.TrimSpace(testbed.Run(t, nil, "oras", "resolve", "--plain-http", repo+":"+tag)); repo+"@"+pushed != ref {
				t.Errorf("%s:%s resolves to %s, the script printed %s", repo, tag, pushed, ref)
			}
			// By tag too, as the chart names it.
			if code, doc, out := verify(t, bin, cfg, repo+":"+tag); code != exitAllowed || doc.Verdict != vouch.Allowed {
				t.Fatalf("the release by tag: exit %d, verdict %s:\n%s", code, doc.Verdict, out)
			}

			denied := func(name, ref, cfg string) string {
				t.Helper()
				code, doc, out := verify(t, bin, cfg, ref)
				if code != exitDenied || doc.Verdict != vouch.Denied {
					t.Errorf("%s (%s): exit %d, verdict %s, want denied:\n%s", name, ref, code, doc.Verdict, out)
					return ""
				}
				t.Logf("%s: denied: %s", name, doc.Subjects[0].Reason)
				return doc.Subjects[0].Reason
			}

			// One changed byte: the index's title annotation "vouch" →
			// "vouci", pushed beside the release under another tag.
			index := testbed.Run(t, nil, "oras", "manifest", "fetch", "--plain-http", ref)
			changed := strings.Replace(index, `"org.opencontainers.image.title":"vouch"`, `"org.opencontainers.image.title":"vouci"`, 1)
			if changed == index || len(changed) != len(index) {
				t.Fatalf("no title annotation to change in the index:\n%s", index)
			}
			tampered := filepath.Join(t.TempDir(), "index.json")
			if err := os.WriteFile(tampered, []byte(changed), 0o600); err != nil {
				t.Fatal(err)
			}
			testbed.Run(t, nil, "oras", "manifest", "push", "--plain-http", "--media-type", "application/vnd.oci.image.index.v1+json", repo+":tampered", tampered)
			denied("one byte changed", repo+":tampered", cfg)

			// An unsigned copy: the same index in another repository,
			// without its referrers.
			testbed.Run(t, nil, "oras", "cp", "--from-plain-http", "--to-plain-http", ref, prefix+"/unsigned:copy")
			denied("unsigned copy", prefix+"/unsigned:copy", cfg)

			// Signed index, unsigned SBOM.
			half := prefix + "/sbom-unsigned"
			testbed.Run(t, nil, "oras", "cp", "--from-plain-http", "--to-plain-http", ref, half+":copy")
			halfRef := half + "@" + digests[reg.Name]
			testbed.Run(t, s.env, "notation", "sign", "--insecure-registry", halfRef)
			testbed.Run(t, append([]string{"COSIGN_EXPERIMENTAL=1"}, s.env...), "cosign", "sign", "--key", s.cosignKey, "--tlog-upload=false",
				"--allow-http-registry", "--registry-referrers-mode=oci-1-1", halfRef)
			attach := exec.Command(testbed.Bin(t, "oras"), "attach", "--plain-http", "--artifact-type", spdx, halfRef, "sbom.spdx.json:"+spdx)
			attach.Dir = work
			if out, err := attach.CombinedOutput(); err != nil {
				t.Fatalf("oras attach: %v\n%s", err, out)
			}
			if reason := denied("unsigned SBOM", halfRef, cfg); !strings.Contains(reason, spdx) {
				t.Errorf("unsigned SBOM: the reason %q does not name the SBOM", reason)
			}
			// The release under someone else's keys.
			denied("other keys", ref, config(t, stranger, prefix))

			if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
				runBinary(t, work, tag)
			}

			// A release tag is never moved: with the tag on the changed
			// index, the script refuses to push.
			if reg.Name == "distribution" {
				testbed.Run(t, nil, "oras", "tag", "--plain-http", repo+":tampered", tag)
				stdout, stderr, err := runScript(t, s, repo, filepath.Join(t.TempDir(), "again"), false)
				if err == nil || !strings.Contains(stderr, "--force moves the tag") {
					t.Errorf("the script over a moved tag: %v, want a refusal\n%s%s", err, stdout, stderr)
				}
			}
		})
	}
	if len(digests) == 2 && digests["distribution"] != digests["ggcr"] {
		t.Errorf("two builds of the same tree: index %s and %s, want one digest", digests["distribution"], digests["ggcr"])
	} else {
		t.Logf("two builds, one index digest: %v", digests)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// versionOf reads the tag the layout in work was written with.
func versionOf(t *testing.T, work string) string {
	t.Helper()
	var idx struct {
		Manifests []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(work, "layout", "index.json")), &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("layout index.json: %v (%d manifests)", err, len(idx.Manifests))
	}
	return idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"]
}

// runBinary takes the binary of this machine's platform out of the layout
// the script wrote and runs `vouch version`: the static binary runs on its
// own, with the version linked in.
func runBinary(t *testing.T, work, version string) {
	t.Helper()
	p, err := layout.FromPath(filepath.Join(work, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	outer, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	om, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := outer.ImageIndex(om.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var img v1.Image
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
			if img, err = idx.Image(d.Digest); err != nil {
				t.Fatal(err)
			}
		}
	}
	if img == nil {
		t.Fatalf("no linux/%s image in the index", runtime.GOARCH)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	path := filepath.Join(t.TempDir(), "vouch")
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatal("no usr/local/bin/vouch in the image")
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "usr/local/bin/vouch" {
			continue
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o700)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		break
	}
	out, err := testbed.RunErr(nil, path, "version")
	if err != nil || !strings.HasPrefix(out, "vouch "+version+"\n") {
		t.Fatalf("the image's vouch version: %v\n%s", err, out)
	}
}
