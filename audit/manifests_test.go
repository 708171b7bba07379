package audit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/internal/testbed"
)

// summary is one workload as "NAMESPACE/KIND/NAME: CONTAINER=IMAGE, ...".
func summary(w audit.Workload) string {
	var cs []string
	for _, c := range w.Containers {
		cs = append(cs, c.Container+"="+c.Image)
	}
	return fmt.Sprintf("%s/%s/%s: %s", w.Namespace, w.Kind, w.Name, strings.Join(cs, ", "))
}

func readFile(t *testing.T, name string, opts audit.ManifestOptions) *audit.Manifests {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := audit.ReadManifests(name, f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReadManifestsKinds(t *testing.T) {
	m := readFile(t, "testdata/workloads.yaml", audit.ManifestOptions{Namespace: "ci"})
	var got []string
	for _, w := range m.Workloads {
		got = append(got, summary(w))
	}
	want := []string{
		`team-a/Deployment/web: init container "migrate"=registry.example/app/migrate:1, container "web"=registry.example/app/web:1, container "sidecar"=registry.example/app/proxy@sha256:0000000000000000000000000000000000000000000000000000000000000000`,
		`ci/StatefulSet/db: container "db"=registry.example/app/db:1`,
		`kube-system/DaemonSet/agent: container "agent"=registry.example/app/agent:1`,
		`ci/Job/once: container "job"=registry.example/app/job:1`,
		`ci/CronJob/nightly: init container "setup"=registry.example/app/setup:1, container "job"=registry.example/app/job:1`,
		`ci/ReplicaSet/rs: container "c"=registry.example/app/rs:1`,
		`ci/ReplicationController/rc: container "c"=registry.example/app/rc:1`,
		`ci/Pod/debug-*: container "main"=registry.example/app/web:1, ephemeral container "debugger"=registry.example/tools/debug:1`,
		`ci/Deployment/scaled-to-nothing: `,
	}
	if !slices.Equal(got, want) {
		t.Errorf("workloads:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// ConfigMap, 10 workload kinds read, the custom resource called Job.
	if m.Objects != 11 {
		t.Errorf("%d objects, want 11", m.Objects)
	}
	if src := m.Workloads[1].Source; src != "testdata/workloads.yaml: document 3" {
		t.Errorf("source %q: the comments-only document counts as document 1", src)
	}
}

func TestReadManifestsJSON(t *testing.T) {
	m := readFile(t, "testdata/list.json", audit.ManifestOptions{})
	var got []string
	for _, w := range m.Workloads {
		got = append(got, summary(w)+" @ "+w.Source)
	}
	want := []string{
		`team-b/Deployment/web: container "web"=registry.example/app/web:2 @ testdata/list.json: document 1, items[1]`,
		`default/Pod/lone: container "c"=registry.example/app/lone:1 @ testdata/list.json: document 2`,
	}
	if !slices.Equal(got, want) || m.Objects != 3 {
		t.Errorf("%d objects, workloads:\n%s\nwant 3 and:\n%s", m.Objects, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReadManifestsErrors(t *testing.T) {
	deploy := func(containers string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {containers: " + containers + "}}}\n"
	}
	for _, tc := range []struct {
		name, input, want string
		opts              audit.ManifestOptions
	}{
		{"bad YAML in the third document", "kind: A\napiVersion: v1\n---\nkind: B\napiVersion: v1\n---\nkind: [\n", "in.yaml: document 3: not YAML", audit.ManifestOptions{}},
		{"a scalar", "just text\n", "in.yaml: document 1: not a Kubernetes object (a string", audit.ManifestOptions{}},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "in.yaml: document 1: kind: required", audit.ManifestOptions{}},
		{"no apiVersion", "kind: Pod\n", "in.yaml: document 1: apiVersion: required", audit.ManifestOptions{}},
		{"kind not a string", "apiVersion: v1\nkind: 3\n", "in.yaml: document 1: kind: expected a string, got a number", audit.ManifestOptions{}},
		{"no name", "apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {}\n", "in.yaml: document 1: metadata.name: required (Pod v1)", audit.ManifestOptions{}},
		{"containers not a list", "---\n" + deploy("{a: b}"), "in.yaml: document 1: Deployment d: Deployment containers", audit.ManifestOptions{}},
		{"image not a string", deploy("[{name: c, image: [x]}]"), "in.yaml: document 1: Deployment d: Deployment containers[0].image", audit.ManifestOptions{}},
		{"a key that is not a string", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {1: x}\n", "in.yaml: document 1: spec: a mapping key is a number (1), not a string", audit.ManifestOptions{}},
		{"a List item that is no object", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}, 7]}`, "in.yaml: document 1, items[1]: not a Kubernetes object (a number)", audit.ManifestOptions{}},
		{"bad JSON in the second value", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}} {"apiVersion": `, "in.yaml: document 2: not JSON", audit.ManifestOptions{}},
		{"too large", strings.Repeat("# filler\n", 200), "in.yaml: more than 1000 bytes", audit.ManifestOptions{MaxBytes: 1000}},
		{"too many objects", strings.Repeat("apiVersion: v1\nkind: ConfigMap\n---\n", 4), "in.yaml: more than 3 objects", audit.ManifestOptions{MaxObjects: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := audit.ReadManifests("in.yaml", strings.NewReader(tc.input), tc.opts)
			var me *audit.ManifestError
			if !errors.As(err, &me) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want a ManifestError starting %q", err, tc.want)
			}
		})
	}
}

// TestReadManifestsHelmChart reads what `helm template` (the real helm
// v4 of the testbed) writes for vouch's own chart: its one Deployment,
// in the release's namespace, with the image the values name.
func TestReadManifestsHelmChart(t *testing.T) {
	helm, err := testbed.LookBin("helm")
	if err != nil {
		t.Fatalf("%v (hack/testbed.sh builds it)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, helm, "template", "audit", filepath.Join("..", "charts", "vouch"), "--namespace", "vouch-system",
		"--set", "image.repository=registry.example/vouch", "--set", "image.tag=v9")
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	m, err := audit.ReadManifests("stdin", strings.NewReader(string(out)), audit.ManifestOptions{Namespace: "vouch-system"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Workloads) != 1 || m.Objects < 5 {
		t.Fatalf("%d objects, workloads %+v; want vouch's Deployment among the chart's objects", m.Objects, m.Workloads)
	}
	if got, want := summary(m.Workloads[0]), `vouch-system/Deployment/audit-vouch: container "vouch"=registry.example/vouch:v9`; got != want {
		t.Errorf("%s, want %s", got, want)
	}
}
