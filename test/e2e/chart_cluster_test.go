//go:build linux

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/internal/testbed"
)

// TestChartServerDryRun renders the chart with every case's values and has
// the real kube-apiserver of the testbed check each rendering with kubectl
// apply --dry-run=server: every object's schema, references the API
// server resolves (roles, namespaces) and the webhook configurations'
// validation. Gatekeeper's CRDs are its own; the chart's CRDs are applied
// from charts/vouch/crds as helm install does; the ServiceMonitor,
// cert-manager's Certificate and Issuer and the Constraint's kind are
// stand-ins from testdata/chart/crds (their operators are not in the
// testbed), with open schemas: for those, the dry run checks where the
// objects go, not their fields.
func TestChartServerDryRun(t *testing.T) {
	helmBin(t)
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl", "gatekeeper-crds"} {
		clusterBin(t, name)
	}
	logDir := t.TempDir()
	tlsDir := t.TempDir()
	if out, err := exec.Command(testbed.Vouch(t, "kubernetes"), "serve", "--generate-tls", tlsDir).CombinedOutput(); err != nil {
		t.Fatalf("vouch serve --generate-tls: %v\n%s", err, out)
	}
	c := startCluster(t, loadCA(t, tlsDir), logDir)

	crds, err := filepath.EvalSymlinks(clusterBin(t, "gatekeeper-crds"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{crds, filepath.Join(chartDir, "crds"), filepath.Join("testdata", "chart", "crds")} {
		c.mustKubectl(t, "", "apply", "--server-side", "-f", dir)
		c.mustKubectl(t, "", "wait", "--for", "condition=established", "--timeout", "60s", "-f", dir)
	}
	c.mustKubectl(t, namespaces(releaseNamespace, "team-a"), "apply", "-f", "-")

	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			manifests, r := render(t, tc)
			out, err := c.kubectl(manifests, "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server of the rendered chart: %v\n%s", err, out)
			}
			// One line per object: "KIND/NAME created (server dry run)".
			if n := strings.Count(out, "(server dry run)"); n != len(r.objects) {
				t.Errorf("the API server checked %d objects, the chart rendered %d:\n%s", n, len(r.objects), out)
			}
		})
	}
}
