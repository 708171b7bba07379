//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vouch-project/vouch/internal/testbed"
)

// The chart, the release the tests render it as, and its full name.
const (
	chartDir         = "../../charts/vouch"
	releaseName      = "vouch"
	releaseNamespace = "vouch-system"
	// The Constraint's kind, which exists once Gatekeeper has read the
	// ConstraintTemplate; helm template is told it exists with
	// --api-versions, as helm install learns it from the cluster.
	constraintAPI = "constraints.gatekeeper.sh/v1beta1/VouchVerification"
)

// helmBin returns the path of helm, failing the test with a hint when it
// is missing.
func helmBin(t *testing.T) string {
	t.Helper()
	path, err := testbed.LookBin("helm")
	if err != nil {
		t.Fatalf("%v (hack/testbed.sh builds it: go_tool helm helm.sh/helm/v4/cmd/helm, about 11 minutes the first time)", err)
	}
	return path
}

// helm runs helm with args and returns its standard output, and its
// standard error in the error.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helmBin(t), args...)
	// No user's helm configuration, no repositories: the chart alone.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// object is one rendered Kubernetes object.
type object map[string]any

// asObject returns v as an object, or nil. (yaml.v3 decodes the maps
// nested in an object as objects.)
func asObject(v any) object {
	switch m := v.(type) {
	case object:
		return m
	case map[string]any:
		return m
	}
	return nil
}

// dig returns the value at a path of map keys and list indexes, or nil.
func (o object) dig(path ...any) any {
	var v any = o
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m := asObject(v)
			if m == nil {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func (o object) str(path ...any) string { s, _ := o.dig(path...).(string); return s }

// id is KIND/NAME, or KIND/NAMESPACE/NAME outside the release's namespace.
func (o object) id() string {
	if ns := o.str("metadata", "namespace"); ns != "" && ns != releaseNamespace {
		return o.str("kind") + "/" + ns + "/" + o.str("metadata", "name")
	}
	return o.str("kind") + "/" + o.str("metadata", "name")
}

// rendered is the output of helm template, by kind/name.
type rendered struct {
	objects []object
	byID    map[string]object
}

func (r rendered) ids() []string {
	var ids []string
	for _, o := range r.objects {
		ids = append(ids, o.id())
	}
	slices.Sort(ids)
	return ids
}

func (r rendered) get(t *testing.T, id string) object {
	t.Helper()
	o, ok := r.byID[id]
	if !ok {
		t.Fatalf("no %s in the rendered chart (it has %v)", id, r.ids())
	}
	return o
}

// parseManifests decodes a stream of YAML documents.
func parseManifests(t *testing.T, manifests string) rendered {
	t.Helper()
	r := rendered{byID: map[string]object{}}
	dec := yaml.NewDecoder(strings.NewReader(manifests))
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the rendered chart is not YAML: %v", err)
		}
		if o == nil {
			continue
		}
		if _, dup := r.byID[o.id()]; dup {
			t.Fatalf("%s rendered twice", o.id())
		}
		r.objects = append(r.objects, o)
		r.byID[o.id()] = o
	}
	return r
}

// chartCase is one set of values the chart is rendered with: the file
// testdata/chart/NAME.yaml (none for "defaults"), the objects it must
// render, and checks of its own.
type chartCase struct {
	name  string
	file  string
	extra []string // more helm template arguments
	want  []string // kind/name of every object, sorted
	check func(t *testing.T, r rendered)
}

// The objects of every rendering with the default TLS and Gatekeeper on.
var baseObjects = []string{"ClusterRole/vouch-config", "ClusterRoleBinding/vouch-config", "ConstraintTemplate/vouchverification",
	"Deployment/vouch", "MutatingWebhookConfiguration/vouch", "PodDisruptionBudget/vouch", "Provider/vouch",
	"Secret/vouch-tls", "Service/vouch", "ServiceAccount/vouch"}

func with(base []string, add ...string) []string {
	out := append(slices.Clone(base), add...)
	slices.Sort(out)
	return out
}

func without(base []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(base), func(s string) bool { return slices.Contains(drop, s) })
}

var chartCases = []chartCase{
	{name: "defaults", want: baseObjects, check: func(t *testing.T, r rendered) {
		args := containerArgs(t, r)
		wantArgs(t, args, "--kubernetes", "--kubernetes-config=vouch", "--budget=2500ms")
		noArgs(t, args, "--redis-addr", "--config", "--client-ca-file", "--kubernetes-pull-secrets", "--audit-interval", "--watch-workloads", "--events-token-file=/etc/vouch/events-token/token")
		if got := r.get(t, "PodDisruptionBudget/vouch").dig("spec", "minAvailable"); got != 1 {
			t.Errorf("the PodDisruptionBudget's minAvailable: %v, want 1", got)
		}
		if r.get(t, "Deployment/vouch").dig("spec", "template", "spec", "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution") == nil {
			t.Error("no preferred pod anti-affinity by default")
		}
		if got := r.get(t, "Deployment/vouch").dig("spec", "template", "spec", "automountServiceAccountToken"); got != true {
			t.Errorf("automountServiceAccountToken %v with config.source kubernetes, want true", got)
		}
	}},
	{name: "constraint", extra: []string{"--api-versions", constraintAPI},
		want: with(baseObjects, "VouchVerification/vouch"), check: func(t *testing.T, r rendered) {
			c := r.get(t, "VouchVerification/vouch")
			if got := fmt.Sprint(c.dig("spec", "match", "excludedNamespaces")); got != "[vouch-system kube-system gatekeeper-system]" {
				t.Errorf("the Constraint's excludedNamespaces: %s", got)
			}
			if got := c.str("spec", "enforcementAction"); got != "deny" {
				t.Errorf("enforcementAction %q, want deny", got)
			}
		}},
	{name: "gatekeeper-off-webhook-on", file: "gatekeeper-off-webhook-on",
		want: with(without(baseObjects, "ConstraintTemplate/vouchverification", "Provider/vouch"), "ValidatingWebhookConfiguration/vouch"),
		check: func(t *testing.T, r rendered) {
			v := r.get(t, "ValidatingWebhookConfiguration/vouch")
			if got := v.str("webhooks", 0, "clientConfig", "service", "path"); got != "/admission/v1/validate" {
				t.Errorf("the validating webhook's path: %q", got)
			}
			rules, _ := json.Marshal(v.dig("webhooks", 0, "rules"))
			for _, res := range []string{"pods", "pods/ephemeralcontainers", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs"} {
				if !strings.Contains(string(rules), `"`+res+`"`) {
					t.Errorf("the validating webhook's rules miss %s: %s", res, rules)
				}
			}
		}},
	{name: "cert-manager", file: "cert-manager",
		want: with(without(baseObjects, "Secret/vouch-tls"), "Certificate/vouch", "Issuer/vouch-ca", "Secret/vouch-ca"),
		check: func(t *testing.T, r rendered) {
			cert := r.get(t, "Certificate/vouch")
			if cert.str("spec", "secretName") != "vouch-tls" || cert.str("spec", "issuerRef", "name") != "vouch-ca" {
				t.Errorf("the Certificate: %v", cert["spec"])
			}
			if got := fmt.Sprint(cert.dig("spec", "dnsNames")); !strings.Contains(got, "vouch.vouch-system.svc") {
				t.Errorf("the Certificate's dnsNames: %s", got)
			}
			// The webhooks and the Provider trust the CA of the chart's Issuer.
			ca := r.get(t, "Secret/vouch-ca").str("data", "tls.crt")
			for _, b := range caBundles(r) {
				if b != ca {
					t.Errorf("a caBundle is not the CA of the Issuer vouch-ca")
				}
			}
		}},
	{name: "cert-manager-issuer", file: "cert-manager-issuer",
		want: with(without(baseObjects, "Secret/vouch-tls"), "Certificate/vouch"),
		check: func(t *testing.T, r rendered) {
			cert := r.get(t, "Certificate/vouch")
			if cert.str("spec", "issuerRef", "name") != "company-ca" || cert.str("spec", "issuerRef", "kind") != "ClusterIssuer" {
				t.Errorf("the Certificate's issuerRef: %v", cert.dig("spec", "issuerRef"))
			}
			for _, b := range caBundles(r) {
				if b != "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==" {
					t.Errorf("a caBundle is not tls.caBundle: %s", b)
				}
			}
		}},
	{name: "ha-redis", file: "ha-redis",
		want: with(baseObjects, "Deployment/vouch-redis", "Service/vouch-redis", "Secret/vouch-redis-hmac", "Secret/vouch-redis-auth"),
		check: func(t *testing.T, r rendered) {
			args := containerArgs(t, r)
			wantArgs(t, args, "--redis-addr=vouch-redis.vouch-system.svc:6379", "--redis-hmac-key-file=/etc/vouch/redis-hmac/key")
			checkHMACKey(t, r, "Secret/vouch-redis-hmac")
			d := r.get(t, "Deployment/vouch")
			if d.dig("spec", "replicas") != 3 {
				t.Errorf("replicas %v, want 3", d.dig("spec", "replicas"))
			}
			if d.dig("spec", "template", "spec", "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution") == nil {
				t.Error("podAntiAffinity hard: no required anti-affinity")
			}
			wantSecretEnv(t, r, "VOUCH_REDIS_PASSWORD", "vouch-redis-auth", "password")
			redis := r.get(t, "Deployment/vouch-redis")
			if got := fmt.Sprint(redis.dig("spec", "template", "spec", "containers", 0, "args")); !strings.Contains(got, "--requirepass $(REDIS_PASSWORD)") {
				t.Errorf("the internal Redis asks no password: %s", got)
			}
			checkRestricted(t, redis.dig("spec", "template", "spec", "containers", 0, "securityContext"), "the internal Redis")
		}},
	{name: "ha-external-redis", file: "ha-external-redis", want: baseObjects,
		check: func(t *testing.T, r rendered) {
			wantArgs(t, containerArgs(t, r), "--redis-addr=redis.cache.svc:6380", "--redis-hmac-key-file=/etc/vouch/redis-hmac/key",
				"--redis-tls", "--redis-ca-file=/etc/vouch/redis-ca/ca.crt")
			wantSecretVolume(t, r, "redis-hmac", "vouch-redis-hmac")
			wantSecretVolume(t, r, "redis-ca", "redis-ca")
			wantSecretEnv(t, r, "VOUCH_REDIS_PASSWORD", "redis-credentials", "password")
			wantSecretEnv(t, r, "VOUCH_REDIS_USERNAME", "redis-credentials", "username")
		}},
	{name: "ha-sentinel", file: "ha-sentinel", want: with(baseObjects, "Secret/vouch-redis-hmac"),
		check: func(t *testing.T, r rendered) {
			args := containerArgs(t, r)
			wantArgs(t, args, "--redis-sentinel-addrs=sentinel-0.redis.svc:26379,sentinel-1.redis.svc:26379,sentinel-2.redis.svc:26379",
				"--redis-sentinel-master=vouch", "--redis-hmac-key-file=/etc/vouch/redis-hmac/key")
			noArgs(t, args, "--redis-addr")
			checkHMACKey(t, r, "Secret/vouch-redis-hmac")
			wantSecretEnv(t, r, "VOUCH_REDIS_PASSWORD", "redis-credentials", "password")
			wantSecretEnv(t, r, "VOUCH_REDIS_SENTINEL_PASSWORD", "redis-credentials", "sentinel-password")
		}},
	{name: "network-policy", file: "network-policy",
		want: with(baseObjects, "Deployment/vouch-redis", "Service/vouch-redis", "Secret/vouch-redis-hmac", "Secret/vouch-redis-auth",
			"NetworkPolicy/vouch", "NetworkPolicy/vouch-redis"),
		check: func(t *testing.T, r rendered) {
			np := r.get(t, "NetworkPolicy/vouch-redis")
			from, _ := json.Marshal(np.dig("spec", "ingress", 0, "from"))
			if !strings.Contains(string(from), `"app.kubernetes.io/component":"server"`) {
				t.Errorf("the internal Redis' NetworkPolicy admits more than vouch's pods: %s", from)
			}
			metrics, _ := json.Marshal(r.get(t, "NetworkPolicy/vouch").dig("spec", "ingress", 1))
			if !strings.Contains(string(metrics), "monitoring") {
				t.Errorf("networkPolicy.metricsFrom not applied: %s", metrics)
			}
		}},
	{name: "monitoring", file: "monitoring", want: with(baseObjects, "ServiceMonitor/vouch", "ConfigMap/vouch-dashboard"),
		check: func(t *testing.T, r rendered) {
			sm := r.get(t, "ServiceMonitor/vouch")
			svcLabels := asObject(r.get(t, "Service/vouch").dig("metadata", "labels"))
			for k, v := range asObject(sm.dig("spec", "selector", "matchLabels")) {
				if svcLabels[k] != v {
					t.Errorf("the ServiceMonitor selects %s=%v, the Service is labelled %v", k, v, svcLabels[k])
				}
			}
			if sm.str("spec", "endpoints", 0, "port") != "metrics" || sm.str("metadata", "labels", "release") != "prometheus" {
				t.Errorf("the ServiceMonitor: %v", sm)
			}
			var dash struct {
				Panels []any `json:"panels"`
			}
			if err := json.Unmarshal([]byte(r.get(t, "ConfigMap/vouch-dashboard").str("data", "vouch.json")), &dash); err != nil || len(dash.Panels) == 0 {
				t.Errorf("the dashboard is not a Grafana dashboard with panels: %v", err)
			}
		}},
	{name: "kubernetes-config", file: "kubernetes-config",
		want: with(baseObjects, "ClusterVouchConfig/vouch", "ClusterRole/vouch-pull-secrets", "ClusterRoleBinding/vouch-pull-secrets", "ClusterRole/vouch-audit", "ClusterRoleBinding/vouch-audit",
			"ClusterRole/vouch-preverify", "ClusterRoleBinding/vouch-preverify",
			"Role/vouch-trust", "RoleBinding/vouch-trust", "Role/team-a/vouch-trust", "RoleBinding/team-a/vouch-trust"),
		check: func(t *testing.T, r rendered) {
			wantArgs(t, containerArgs(t, r), "--kubernetes-pull-secrets", "--client-ca-file=/etc/vouch/client-ca/ca.crt", "--audit-interval=10m", "--audit-rate=5",
				"--watch-workloads", "--preverify-rate=20", "--events-token-file=/etc/vouch/events-token/token", "--events-listen=:8444")
			wantSecretVolume(t, r, "client-ca", "gatekeeper-ca")
			wantSecretVolume(t, r, "events-token", "registry-events")
			rules, _ := json.Marshal(r.get(t, "ClusterRole/vouch-preverify").dig("rules"))
			if want := `[{"apiGroups":["apps"],"resources":["deployments","statefulsets","daemonsets","replicasets"],"verbs":["list","watch"]},{"apiGroups":["batch"],"resources":["jobs","cronjobs"],"verbs":["list","watch"]}]`; string(rules) != want {
				t.Errorf("ClusterRole/vouch-preverify rules %s\nwant %s", rules, want)
			}
			var roles []string
			for _, o := range r.objects {
				if o.str("kind") == "Role" {
					rules, _ := json.Marshal(o.dig("rules"))
					roles = append(roles, o.str("metadata", "namespace")+": "+string(rules))
				}
			}
			slices.Sort(roles)
			want := []string{
				`team-a: [{"apiGroups":[""],"resourceNames":["team-a-cosign-pub"],"resources":["secrets"],"verbs":["get","watch"]}]`,
				`vouch-system: [{"apiGroups":[""],"resourceNames":["notation-ca"],"resources":["secrets"],"verbs":["get","watch"]},{"apiGroups":[""],"resourceNames":["notation-trust-policy"],"resources":["configmaps"],"verbs":["get","watch"]}]`,
			}
			if !slices.Equal(roles, want) {
				t.Errorf("the Roles:\n%s\nwant\n%s", strings.Join(roles, "\n"), strings.Join(want, "\n"))
			}
		}},
	{name: "config-file", file: "config-file",
		want: with(without(baseObjects, "ClusterRole/vouch-config", "ClusterRoleBinding/vouch-config"), "ConfigMap/vouch-config"),
		check: func(t *testing.T, r rendered) {
			args := containerArgs(t, r)
			wantArgs(t, args, "--config=/etc/vouch/config/vouch.yaml")
			noArgs(t, args, "--kubernetes")
			if got := r.get(t, "Deployment/vouch").dig("spec", "template", "spec", "automountServiceAccountToken"); got != false {
				t.Errorf("automountServiceAccountToken %v with config.source file, want false", got)
			}
			if cfg := r.get(t, "ConfigMap/vouch-config").str("data", "vouch.yaml"); !strings.Contains(cfg, "trustPolicy: /etc/vouch/trust/trustpolicy.json") {
				t.Errorf("the config file:\n%s", cfg)
			}
		}},
}

// render runs helm template for a case.
func render(t *testing.T, c chartCase) (string, rendered) {
	t.Helper()
	args := append([]string{"template", releaseName, chartDir, "--namespace", releaseNamespace}, c.extra...)
	if c.file != "" {
		args = append(args, "--values", filepath.Join("testdata", "chart", c.file+".yaml"))
	}
	out, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out, parseManifests(t, out)
}

// TestChartTemplate lints and renders the chart with each case's values,
// checks that each renders exactly its objects, and checks what every
// rendering must hold: a restricted pod, probes on the metrics port,
// Secrets mounted whole (updated in place, so certificates rotate
// without restart), only flags that vouch serve knows, certificates that
// the caBundles verify, webhook and Provider timeouts above vouch's budget.
func TestChartTemplate(t *testing.T) {
	helmBin(t)
	flags := serveFlags(t)
	if out, err := helm(t, "lint", "--strict", chartDir); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			if c.file != "" {
				if out, err := helm(t, "lint", "--strict", chartDir, "--values", filepath.Join("testdata", "chart", c.file+".yaml")); err != nil {
					t.Fatalf("helm lint: %v\n%s", err, out)
				}
			}
			_, r := render(t, c)
			if got := r.ids(); !slices.Equal(got, c.want) {
				t.Errorf("rendered objects:\n%v\nwant\n%v", got, c.want)
			}
			checkDeployment(t, r, flags)
			checkTLS(t, r)
			checkTimeouts(t, r)
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

// serveFlags returns the long flags of `vouch serve --help`, of a vouch
// built with -tags kubernetes as the image is.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(testbed.Vouch(t, "kubernetes"), "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("vouch serve --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["tls-cert-file"] || !flags["kubernetes"] {
		t.Fatalf("vouch serve --help lists no --tls-cert-file or --kubernetes:\n%s", out)
	}
	return flags
}

func container(t *testing.T, r rendered) object {
	t.Helper()
	c := asObject(r.get(t, "Deployment/vouch").dig("spec", "template", "spec", "containers", 0))
	if c == nil {
		t.Fatal("the Deployment has no container")
	}
	return c
}

func containerArgs(t *testing.T, r rendered) []string {
	t.Helper()
	var args []string
	for _, a := range container(t, r)["args"].([]any) {
		args = append(args, fmt.Sprint(a))
	}
	return args
}

func wantArgs(t *testing.T, args []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(args, w) {
			t.Errorf("vouch's arguments lack %s: %v", w, args)
		}
	}
}

// noArgs fails when an argument is one of the flags (with or without a value).
func noArgs(t *testing.T, args []string, flags ...string) {
	t.Helper()
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if slices.Contains(flags, name) {
			t.Errorf("vouch's arguments have %s: %v", a, args)
		}
	}
}

func checkRestricted(t *testing.T, sc any, what string) {
	t.Helper()
	got, _ := json.Marshal(sc)
	for _, want := range []string{`"allowPrivilegeEscalation":false`, `"readOnlyRootFilesystem":true`, `"runAsNonRoot":true`,
		`"capabilities":{"drop":["ALL"]}`, `"seccompProfile":{"type":"RuntimeDefault"}`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("%s's security context lacks %s: %s", what, want, got)
		}
	}
}

func checkDeployment(t *testing.T, r rendered, flags map[string]bool) {
	t.Helper()
	d := r.get(t, "Deployment/vouch")
	c := container(t, r)
	checkRestricted(t, c.dig("securityContext"), "vouch's container")
	pod, _ := json.Marshal(d.dig("spec", "template", "spec", "securityContext"))
	if !strings.Contains(string(pod), `"runAsNonRoot":true`) || !strings.Contains(string(pod), `"seccompProfile":{"type":"RuntimeDefault"}`) {
		t.Errorf("the pod's security context: %s", pod)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if c.str(probe, "httpGet", "path") != path || c.str(probe, "httpGet", "port") != "metrics" {
			t.Errorf("%s: %v, want %s on the metrics port", probe, c[probe], path)
		}
	}
	if c.dig("resources", "requests", "cpu") == nil || c.dig("resources", "limits", "memory") == nil {
		t.Errorf("resources: %v", c["resources"])
	}
	if img := c.str("image"); img != "ghcr.io/vouch-project/vouch:"+chartAppVersion(t) {
		t.Errorf("image %q, want the chart's appVersion", img)
	}
	volumes := map[string]bool{}
	for _, v := range d.dig("spec", "template", "spec", "volumes").([]any) {
		volumes[asObject(v).str("name")] = true
	}
	for _, m := range c.dig("volumeMounts").([]any) {
		m := asObject(m)
		if m["subPath"] != nil {
			t.Errorf("volume %s mounted with subPath: the kubelet would not update it in place", m.str("name"))
		}
		if !volumes[m.str("name")] {
			t.Errorf("volume mount %s has no volume", m.str("name"))
		}
	}
	var mounts []string
	for _, m := range c.dig("volumeMounts").([]any) {
		mounts = append(mounts, asObject(m).str("mountPath"))
	}
	args := containerArgs(t, r)
	if args[0] != "serve" {
		t.Fatalf("vouch's first argument %q, want serve", args[0])
	}
	for _, a := range args[1:] {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !flags[name] {
			t.Errorf("vouch serve has no flag %s", a)
		}
		// A file flag names a file in a mounted folder.
		if strings.HasSuffix(name, "-file") && !slices.ContainsFunc(mounts, func(m string) bool { return strings.HasPrefix(value, m+"/") }) {
			t.Errorf("%s: no volume is mounted there (%v)", a, mounts)
		}
	}
}

// caBundles returns the caBundle of the Provider and of every webhook.
func caBundles(r rendered) []string {
	var out []string
	for _, o := range r.objects {
		switch o.str("kind") {
		case "Provider":
			out = append(out, o.str("spec", "caBundle"))
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			for i := range o.dig("webhooks").([]any) {
				out = append(out, o.str("webhooks", i, "clientConfig", "caBundle"))
			}
		}
	}
	return out
}

// checkTLS checks, with the generated certificate, that every caBundle
// verifies the serving certificate for the Service's name.
func checkTLS(t *testing.T, r rendered) {
	t.Helper()
	secret, ok := r.byID["Secret/vouch-tls"]
	if !ok {
		return
	}
	if secret.str("type") != "kubernetes.io/tls" {
		t.Errorf("Secret vouch-tls of type %q", secret.str("type"))
	}
	leaf := parseCert(t, secret.str("data", "tls.crt"))
	for _, b := range caBundles(r) {
		pool := x509.NewCertPool()
		pem, err := base64.StdEncoding.DecodeString(b)
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("a caBundle is not base64 of PEM certificates: %v", err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "vouch.vouch-system.svc"}); err != nil {
			t.Errorf("the serving certificate, checked with a caBundle: %v", err)
		}
	}
}

func parseCert(t *testing.T, b64 string) *x509.Certificate {
	t.Helper()
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// checkTimeouts checks that whoever calls vouch waits longer than vouch's
// budget, and that the webhooks keep within the API server's limit and
// leave vouch's namespace and kube-system alone.
func checkTimeouts(t *testing.T, r rendered) {
	t.Helper()
	var budget time.Duration
	for _, a := range containerArgs(t, r) {
		if v, ok := strings.CutPrefix(a, "--budget="); ok {
			var err error
			if budget, err = time.ParseDuration(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, o := range r.objects {
		switch o.str("kind") {
		case "Provider":
			if s, _ := o.dig("spec", "timeout").(int); time.Duration(s)*time.Second <= budget {
				t.Errorf("the Provider's timeout %v s is not above vouch's budget %v", o.dig("spec", "timeout"), budget)
			}
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			for i := range o.dig("webhooks").([]any) {
				s, _ := o.dig("webhooks", i, "timeoutSeconds").(int)
				if d := time.Duration(s) * time.Second; d <= budget || s > 30 {
					t.Errorf("%s: timeoutSeconds %d, want above vouch's budget %v and at most 30", o.id(), s, budget)
				}
				if o.str("webhooks", i, "failurePolicy") != "Fail" {
					t.Errorf("%s: failurePolicy %q, want Fail by default", o.id(), o.str("webhooks", i, "failurePolicy"))
				}
				sel, _ := json.Marshal(o.dig("webhooks", i, "namespaceSelector"))
				if !strings.Contains(string(sel), `"operator":"NotIn","values":["vouch-system","kube-system"]`) {
					t.Errorf("%s: namespaceSelector %s does not exclude vouch-system and kube-system", o.id(), sel)
				}
			}
		}
	}
}

func checkHMACKey(t *testing.T, r rendered, id string) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(r.get(t, id).str("data", "key"))
	if err != nil || len(bytes.TrimSpace(key)) < 32 {
		t.Errorf("%s: the HMAC key is %d bytes (%v), want at least 32", id, len(key), err)
	}
}

func wantSecretEnv(t *testing.T, r rendered, name, secret, key string) {
	t.Helper()
	for _, e := range container(t, r)["env"].([]any) {
		e := asObject(e)
		if e.str("name") == name {
			if e.str("valueFrom", "secretKeyRef", "name") != secret || e.str("valueFrom", "secretKeyRef", "key") != key {
				t.Errorf("$%s from %v, want key %s of Secret %s", name, e["valueFrom"], key, secret)
			}
			return
		}
	}
	t.Errorf("no $%s in vouch's environment", name)
}

func wantSecretVolume(t *testing.T, r rendered, volume, secret string) {
	t.Helper()
	for _, v := range r.get(t, "Deployment/vouch").dig("spec", "template", "spec", "volumes").([]any) {
		v := asObject(v)
		if v.str("name") == volume {
			if got := v.str("secret", "secretName"); got != secret {
				t.Errorf("volume %s is Secret %q, want %q", volume, got, secret)
			}
			return
		}
	}
	t.Errorf("no volume %s", volume)
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	var chart struct {
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal(mustRead(t, filepath.Join(chartDir, "Chart.yaml")), &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("Chart.yaml's appVersion: %q, %v", chart.AppVersion, err)
	}
	return chart.AppVersion
}

// TestChartRejects checks that values.schema.json and the templates refuse
// broken values with a message that names the value.
func TestChartRejects(t *testing.T) {
	helmBin(t)
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"replicas=2"}, "additional properties 'replicas' not allowed"},
		{[]string{"redis.mdoe=internal"}, "at '/redis': additional properties 'mdoe' not allowed"},
		{[]string{"replicaCount=two"}, "at '/replicaCount': got string, want integer"},
		{[]string{"tls.mode=selfsigned"}, "at '/tls/mode': value must be one of 'generate', 'certManager', 'secret'"},
		{[]string{"admissionWebhooks.validating.timeoutSeconds=31"}, "at '/admissionWebhooks/validating/timeoutSeconds'"},
		{[]string{"server.budget=fast"}, "at '/server/budget'"},
		{[]string{"config.auditInterval=hourly"}, "at '/config/auditInterval'"},
		{[]string{"redis.mode=sentinel", "redis.sentinel.addresses={sentinel:26379}"}, "redis.sentinel.masterName is required with redis.mode sentinel"},
		{[]string{"redis.mode=external"}, "redis.address (HOST:PORT) is required with redis.mode external"},
		{[]string{"redis.mode=external", "redis.address=redis"}, "at '/redis/address'"},
		{[]string{"tls.mode=secret"}, "tls.secretName is required with tls.mode secret"},
		{[]string{"tls.mode=secret", "tls.secretName=vouch-serving"}, "tls.caBundle is required with tls.mode secret"},
		{[]string{"config.source=file"}, "config.file is required with config.source file"},
	} {
		t.Run(strings.Join(c.set, ","), func(t *testing.T) {
			args := []string{"template", releaseName, chartDir, "--namespace", releaseNamespace}
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			out, err := helm(t, args...)
			if err == nil {
				t.Fatalf("rendered, want an error with %q:\n%.300s", c.want, out)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error without %q:\n%v", c.want, err)
			}
		})
	}
}

// TestChartCRDs checks that the chart's CRDs are deploy/crds', byte for
// byte (hack/gen-crds.sh writes both).
func TestChartCRDs(t *testing.T) {
	deploy, err := filepath.Glob("../../deploy/crds/*.yaml")
	if err != nil || len(deploy) == 0 {
		t.Fatalf("no CRDs in deploy/crds: %v", err)
	}
	chart, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if len(chart) != len(deploy) {
		t.Errorf("charts/vouch/crds has %d files, deploy/crds %d: run hack/gen-crds.sh", len(chart), len(deploy))
	}
	for _, path := range deploy {
		want := mustRead(t, path)
		got, err := os.ReadFile(filepath.Join(chartDir, "crds", filepath.Base(path)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("charts/vouch/crds/%s differs from deploy/crds (%v): run hack/gen-crds.sh", filepath.Base(path), err)
		}
	}
}

// TestChartGatekeeperTemplate checks that the chart's ConstraintTemplate
// is deploy/gatekeeper/template.yaml's, and its Provider and Constraint
// those of deploy/gatekeeper but for the names, url and caBundle.
func TestChartGatekeeperTemplate(t *testing.T) {
	_, r := render(t, chartCase{extra: []string{"--api-versions", constraintAPI}})
	var deploy object
	if err := yaml.Unmarshal(mustRead(t, "../../deploy/gatekeeper/template.yaml"), &deploy); err != nil {
		t.Fatal(err)
	}
	got := r.get(t, "ConstraintTemplate/vouchverification")
	if g, w := got.str("spec", "targets", 0, "rego"), deploy.str("spec", "targets", 0, "rego"); g != w {
		t.Errorf("the chart's rego differs from deploy/gatekeeper/template.yaml's (charts/vouch/files/vouchverification.rego):\n%s\nwant\n%s", g, w)
	}
	gotSpec, _ := json.Marshal(got.dig("spec", "crd"))
	wantSpec, _ := json.Marshal(deploy.dig("spec", "crd"))
	if !bytes.Equal(gotSpec, wantSpec) {
		t.Errorf("spec.crd: %s, want %s", gotSpec, wantSpec)
	}
	p := r.get(t, "Provider/vouch")
	if p.str("spec", "url") != "https://vouch.vouch-system.svc:443/gatekeeper/v1/verify" {
		t.Errorf("the Provider's url: %s", p.str("spec", "url"))
	}
	var constraint object
	if err := yaml.Unmarshal(mustRead(t, "../../deploy/gatekeeper/constraint.yaml"), &constraint); err != nil {
		t.Fatal(err)
	}
	gotKinds, _ := json.Marshal(r.get(t, "VouchVerification/vouch").dig("spec", "match", "kinds"))
	wantKinds, _ := json.Marshal(constraint.dig("spec", "match", "kinds"))
	if !bytes.Equal(gotKinds, wantKinds) {
		t.Errorf("the Constraint matches %s, deploy/gatekeeper's %s", gotKinds, wantKinds)
	}
}

// TestChartDashboard checks that every metric the Grafana dashboard
// queries is one vouch exports (server/metrics.go).
func TestChartDashboard(t *testing.T) {
	source := string(mustRead(t, "../../server/metrics.go"))
	exported := map[string]bool{}
	for _, m := range regexp.MustCompile(`Name:\s+"(vouch_[a-z_]+)"`).FindAllStringSubmatch(source, -1) {
		exported[m[1]] = true
	}
	if len(exported) < 10 {
		t.Fatalf("found %d metric names in server/metrics.go: has it changed shape?", len(exported))
	}
	dash := string(mustRead(t, filepath.Join(chartDir, "files", "dashboard.json")))
	var d map[string]any
	if err := json.Unmarshal([]byte(dash), &d); err != nil {
		t.Fatal(err)
	}
	queried := map[string]bool{}
	for _, m := range regexp.MustCompile(`vouch_[a-z_]+`).FindAllString(dash, -1) {
		name := m
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(m, suffix); ok && exported[base] {
				name = base
			}
		}
		if !exported[name] {
			t.Errorf("the dashboard queries %s, which vouch does not export", m)
		}
		queried[name] = true
	}
	for _, want := range []string{"vouch_answers_total", "vouch_http_request_duration_seconds", "vouch_cache_lookups_total", "vouch_config_last_reload_successful", "vouch_redis_available"} {
		if !queried[want] {
			t.Errorf("the dashboard shows no %s", want)
		}
	}
}

// TestChartNotes checks what NOTES.txt tells the user after helm install
// (a client-side dry run, no cluster): how to try a signed and an unsigned
// image, and, while Gatekeeper has not made the Constraint's kind, that
// images are not enforced yet.
func TestChartNotes(t *testing.T) {
	helmBin(t)
	notes := func(extra ...string) string {
		t.Helper()
		args := append([]string{"install", releaseName, chartDir, "--namespace", releaseNamespace, "--dry-run=client", "--kubeconfig", os.DevNull}, extra...)
		out, err := helm(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		_, n, ok := strings.Cut(out, "\nNOTES:\n")
		if !ok {
			t.Fatalf("helm install printed no NOTES:\n%s", out)
		}
		return n
	}
	first := notes()
	for _, want := range []string{"NOT ENFORCED YET", "kubectl run vouch-signed --image", "kubectl run vouch-unsigned --image", "--dry-run=server",
		"denied by vouch: <reason>", `Namespaces not checked: ["vouch-system","kube-system"]`} {
		if !strings.Contains(first, want) {
			t.Errorf("the notes of a first install lack %q:\n%s", want, first)
		}
	}
	if off := notes("--set", "gatekeeper.constraint.enabled=false"); strings.Contains(off, "NOT ENFORCED") {
		t.Errorf("the notes say the Constraint is missing, but none was asked for:\n%s", off)
	}
	if webhook := notes("--set", "gatekeeper.enabled=false", "--set", "admissionWebhooks.validating.enabled=true"); !strings.Contains(webhook, "vouch denied 1 of 1 images") || strings.Contains(webhook, "Gatekeeper") {
		t.Errorf("the notes without Gatekeeper:\n%s", webhook)
	}
}
