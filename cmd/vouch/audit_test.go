package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/internal/testbed"
)

// vouchRunStdin is vouchRun with standard input.
func vouchRunStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// auditBed is a real registry (the distribution registry process) with a
// signed and an unsigned image, and a config whose policy requires a
// Notary Project signature, in audit mode in namespace "relaxed".
type auditBed struct {
	host, config string
	signed       string // digest
	p            *testbed.Pusher
	signer       *testbed.NotationSigner
}

func newAuditBed(t *testing.T) *auditBed {
	t.Helper()
	reg := testbed.Distribution(t)
	signer := testbed.NewNotationSigner(t)
	p := testbed.NewPusher(t, reg.Host, "audit/app")
	signed := p.Image("signed", "signed")
	signer.Sign(p, signed)
	p.Image("unsigned", "unsigned")
	dir := t.TempDir()
	files := configFiles("notation", readFile(t, signer.CAFile))
	files["vouch.yaml"] = append(files["vouch.yaml"], []byte(`registries:
  plainHTTP: true
policy:
  scopes:
    - name: signed
      repositories: ["*"]
      require:
        - artifactType: application/vnd.cncf.notary.signature
    - name: relaxed
      repositories: ["*"]
      namespaces: [relaxed]
      mode: audit
      require:
        - artifactType: application/vnd.cncf.notary.signature
`)...)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &auditBed{host: reg.Host, config: filepath.Join(dir, "vouch.yaml"), signed: signed.Digest.String(), p: p, signer: signer}
}

func (b *auditBed) image(tag string) string { return b.host + "/audit/app:" + tag }

// TestAuditManifests runs `vouch audit -f` on what `helm template`
// writes for vouch's chart (on standard input) and on hand-written
// manifests in a folder, verifying real images of a real registry under
// each namespace's policy.
func TestAuditManifests(t *testing.T) {
	b := newAuditBed(t)

	t.Run("helm template | vouch audit -f -", func(t *testing.T) {
		helm, err := testbed.LookBin("helm")
		if err != nil {
			t.Fatalf("%v (hack/testbed.sh builds it)", err)
		}
		render := func(tag string) string {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, helm, "template", "ci", filepath.Join("..", "..", "charts", "vouch"), "-n", "vouch-system",
				"--set", "image.repository="+b.host+"/audit/app", "--set", "image.tag="+tag)
			home := t.TempDir()
			cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			return string(out)
		}
		code, out, stderr := vouchRunStdin(t, render("signed"), "audit", "--config", b.config, "-f", "-")
		if code != exitAllowed {
			t.Fatalf("signed chart: exit %d\n%s%s", code, out, stderr)
		}
		for _, want := range []string{"namespace vouch-system\n", "  Deployment ci-vouch  [stdin: document ", `ALLOWED  container "vouch"  ` + b.image("signed") + "  " + vouch.ShortDigest(digest.Digest(b.signed)),
			"1 workload, 1 container, 1 image verified: 1 allowed"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		code, out, _ = vouchRunStdin(t, render("unsigned"), "audit", "--config", b.config, "-f", "-")
		if code != exitDenied || !strings.Contains(out, "DENIED  container \"vouch\"  "+b.image("unsigned")) || !strings.Contains(out, "no application/vnd.cncf.notary.signature found") {
			t.Errorf("unsigned chart: exit %d, want 1 and the reason\n%s", code, out)
		}
	})

	t.Run("a folder, JSON", func(t *testing.T) {
		dir := t.TempDir()
		write := func(name, data string) {
			t.Helper()
			path := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("app.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  template:
    spec:
      containers: [{name: web, image: `+b.image("signed")+`}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: team-a}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          initContainers: [{name: fetch, image: `+b.image("signed")+`}]
          containers: [{name: report, image: `+b.image("unsigned")+`}]
`)
		write("README.md", "not a manifest")
		write("relaxed/pod.json", `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "try", "namespace": "relaxed"},
 "spec": {"containers": [{"name": "c", "image": "`+b.image("unsigned")+`"}]}}`)

		// Without -R, the subfolder is not read.
		code, out, stderr := vouchRun(t, "audit", "--config", b.config, "-f", dir, "-n", "prod", "-o", "json")
		var r audit.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("exit %d: %v\n%s%s", code, err, out, stderr)
		}
		if code != exitDenied || r.Verdict != vouch.Denied || len(r.Workloads) != 2 || r.Verified != 2 {
			t.Fatalf("exit %d, verdict %s, %d workloads, %d verified; want 1, denied, 2, 2\n%s", code, r.Verdict, len(r.Workloads), r.Verified, out)
		}
		if w := r.Workloads[0]; w.Namespace != "prod" || w.Kind != "Deployment" || w.Verdict != vouch.Allowed || w.Images[0].Digest.String() != b.signed {
			t.Errorf("first workload %+v, want prod's Deployment, allowed, the signed digest", w)
		}
		if w := r.Workloads[1]; w.Namespace != "team-a" || w.Kind != "CronJob" || w.Verdict != vouch.Denied ||
			w.Images[0].Verdict != vouch.Allowed || w.Images[1].Verdict != vouch.Denied || !strings.Contains(w.Images[1].Reason, "no application/vnd.cncf.notary.signature found") {
			t.Errorf("second workload %+v, want team-a's CronJob, its init container allowed and its container denied", w)
		}

		// With -R: the relaxed namespace's scope is in audit mode, so its
		// unsigned Pod is allowed, waived; the unsigned image is verified
		// under that policy too.
		code, out, _ = vouchRun(t, "audit", "--config", b.config, "-f", dir, "-R", "-o", "json")
		r = audit.Report{}
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitDenied || len(r.Workloads) != 3 || r.Verified != 3 {
			t.Fatalf("-R: exit %d, %v, %d workloads, %d verified; want 1, 3, 3\n%s", code, err, len(r.Workloads), r.Verified, out)
		}
		if w := r.Workloads[0]; w.Namespace != "default" || w.Kind != "Deployment" {
			t.Errorf("-R without -n: first workload %s/%s, want default/Deployment", w.Namespace, w.Kind)
		}
		if w := r.Workloads[1]; w.Namespace != "relaxed" || w.Verdict != vouch.Allowed || !w.Images[0].Waived || w.Images[0].Mode != vouch.ModeAudit ||
			!strings.Contains(w.Source, filepath.Join("relaxed", "pod.json")+": document 1") {
			t.Errorf("relaxed workload %+v, want allowed, waived in audit mode, its file named", w)
		}
	})

	t.Run("bad manifests and usage", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 3}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		empty := filepath.Join(dir, "empty.yaml")
		if err := os.WriteFile(empty, []byte("# nothing\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			args  []string
			code  int
			error string
		}{
			{"bad document", []string{"-f", bad}, exitUndecided, bad + ": document 2: Pod p: Pod containers"},
			{"no objects", []string{"-f", empty}, exitUndecided, "no Kubernetes objects in the input"},
			{"missing file", []string{"-f", filepath.Join(dir, "nope.yaml")}, exitUndecided, "no such file"},
			{"no source", nil, exitUsage, "audit needs a source"},
			{"two sources", []string{"-f", bad, "--kubernetes"}, exitUsage, "give one source"},
			{"bad namespace", []string{"-f", bad, "-n", "Team_A"}, exitUsage, `-n "Team_A": not a namespace name`},
			{"two namespaces with -f", []string{"-f", bad, "-n", "a", "-n", "b"}, exitUsage, "give one namespace"},
			{"stdin twice", []string{"-f", "-", "--password-stdin", "-u", "me"}, exitUsage, "both read standard input"},
			{"arguments", []string{"-f", bad, "app:v1"}, exitUsage, "audit takes no arguments"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, stderr := vouchRun(t, append([]string{"audit", "--config", b.config}, tc.args...)...)
				if code != tc.code || !strings.Contains(stderr, tc.error) {
					t.Errorf("exit %d, want %d; stderr %q, want it to say %q", code, tc.code, stderr, tc.error)
				}
			})
		}
	})
}
