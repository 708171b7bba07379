package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/render"
)

// maxManifestFiles bounds the files vouch audit -f reads from folders.
const maxManifestFiles = 10000

// auditFlags are vouch audit's own flags.
type auditFlags struct {
	files      []string
	recursive  bool
	namespaces []string
	kubernetes bool
	kubeconfig string
	output     string
}

func newAuditCommand(stdin io.Reader) *cobra.Command {
	var (
		gf graphFlags
		vf verifierFlags
		af auditFlags
	)
	cmd := &cobra.Command{
		Use:   "audit [flags] (-f FILE|DIR|- ... | --kubernetes)",
		Short: "Verify the images of workloads, from manifests or a cluster, each under its namespace's policy",
		Long: `Audit lists the images of workloads and verifies each under the policy that
applies in the workload's namespace (the config's policy scopes that name
the namespace, as vouch serve decides admission there).

Sources:
  -f FILE|DIR|-   Kubernetes manifests: YAML with any number of documents,
                  JSON, Lists (kubectl get -o yaml); "-" reads standard input,
                  so that "helm template ... | vouch audit -f -" checks a chart
                  in CI before anything is deployed. A folder's *.yaml, *.yml
                  and *.json files are read (-R: and its subfolders').
  --kubernetes    the running Pods of a cluster (kubeconfig, or in cluster),
                  grouped under the workload that owns each (ReplicaSet ->
                  Deployment, Job -> CronJob); the digest a node reports
                  running is what is verified. Needs a vouch built with
                  -tags kubernetes (the container image is).

Pods, Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, ReplicaSets,
ReplicationControllers and PodTemplates are read: their containers, init
containers and ephemeral containers. Each distinct image is verified once
under each distinct policy, however many containers use it.

Exit codes:
  0   every image is allowed
  1   an image is denied
  2   vouch could not decide (registry unreachable, bad manifest, bad config)
  64  usage error`,
		Example: `  # A Helm chart, before it is installed
  helm template my-release ./chart -n prod | vouch audit --config vouch.yaml -n prod -f -

  # Manifests in a folder, JSON report
  vouch audit --config vouch.yaml -f k8s/ -R -o json

  # What runs in two namespaces of the current kubeconfig's cluster
  vouch audit --config vouch.yaml --kubernetes -n team-a -n team-b`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("audit takes no arguments (name manifests with -f): %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAudit(cmd, stdin, &gf, &vf, &af)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&af.files, "filename", "f", nil, "read manifests from `FILE`, a folder, or - for standard input (repeatable)")
	fs.BoolVarP(&af.recursive, "recursive", "R", false, "read the folders given with -f and their subfolders")
	fs.StringArrayVarP(&af.namespaces, "namespace", "n", nil, "with -f: the `NAMESPACE` of objects whose manifest names none (default \"default\"); with --kubernetes: audit this namespace only (repeatable; default all)")
	fs.BoolVar(&af.kubernetes, "kubernetes", false, "audit the running Pods of the cluster that --kubeconfig (or $KUBECONFIG, ~/.kube/config, or the pod's service account) names")
	fs.StringVar(&af.kubeconfig, "kubeconfig", "", "with --kubernetes: the kubeconfig `FILE` (default: $KUBECONFIG, ~/.kube/config, else in cluster)")
	fs.StringVarP(&af.output, "output", "o", "text", "output format: text or json")
	vf.register(fs)
	gf.register(fs)
	return cmd
}

func runAudit(cmd *cobra.Command, stdin io.Reader, gf *graphFlags, vf *verifierFlags, af *auditFlags) error {
	if af.output != "text" && af.output != "json" {
		return usageErrorf("-o must be text or json, not %q", af.output)
	}
	switch {
	case len(af.files) == 0 && !af.kubernetes:
		return usageErrorf("audit needs a source: -f FILE|DIR|- (manifests) or --kubernetes (a cluster)")
	case len(af.files) > 0 && af.kubernetes:
		return usageErrorf("-f and --kubernetes: give one source")
	case af.kubeconfig != "" && !af.kubernetes:
		return usageErrorf("--kubeconfig needs --kubernetes")
	case len(af.files) > 0 && len(af.namespaces) > 1:
		return usageErrorf("-n with -f: give one namespace, the one of objects whose manifest names none")
	case slices.Contains(af.files, "-") && gf.passwordStdin:
		return usageErrorf("-f - and --password-stdin both read standard input")
	}
	if err := validNamespaces(af.namespaces); err != nil {
		return err
	}
	cfg, err := loadConfig(cmd.Flags(), gf, vf)
	if err != nil {
		return err
	}
	verifiers, pol, err := vf.build(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), gf.timeout)
	defer cancel()

	var workloads []audit.Workload
	if af.kubernetes {
		workloads, err = clusterWorkloads(ctx, af.kubeconfig, af.namespaces)
	} else {
		workloads, err = manifestWorkloads(af, stdin)
	}
	if err != nil {
		return err
	}

	var refs []vouch.Reference
	for _, w := range workloads {
		for _, c := range w.Containers {
			if r, err := vouch.ParseReference(c.Image); err == nil && !r.IsLayout() {
				refs = append(refs, r)
			}
		}
	}
	st, err := gf.store(stdin, refs)
	if err != nil {
		return err
	}
	base := gf.executor(st, verifiers, pol)
	report, err := audit.Run(ctx, workloads, audit.Options{
		Executor: namespaceExecutors(cfg, base, verifiers),
		Parallel: 4 * gf.concurrency,
	})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if af.output == "json" {
		err = render.AuditJSON(out, report)
	} else {
		err = render.AuditText(out, report, render.TextOptions{Color: colorOK(out)})
	}
	if err != nil {
		return err
	}
	return verdictExit(report.Verdict)
}

// namespaceExecutors returns the executor of each namespace: base, whose
// policy is the one for requests without a namespace, unless the config's
// policy has scopes naming the namespace, or a Rego or CEL policy (which
// reads the namespace). Namespaces named by the same scopes share an
// executor and their verdicts, unless a Rego or CEL policy is configured.
func namespaceExecutors(cfg *config.File, base *vouch.Executor, verifiers []vouch.Verifier) func(string) (*vouch.Executor, string, error) {
	names := make([]string, len(verifiers))
	for i, v := range verifiers {
		names[i] = v.Name()
	}
	policyOf := cfg.NamespacePolicies(names)
	if policyOf == nil {
		return func(string) (*vouch.Executor, string, error) { return base, "", nil }
	}
	// A Rego or CEL policy reads the namespace (input.namespace): then
	// each namespace has a policy of its own.
	code := slices.ContainsFunc(cfg.Policy.Scopes, func(s policy.Scope) bool { return s.Rego != nil || s.CEL != nil })
	byKey := map[string]*vouch.Executor{}
	return func(ns string) (*vouch.Executor, string, error) {
		var scopes []string
		for _, s := range cfg.Policy.Scopes {
			if slices.Contains(s.Namespaces, ns) {
				scopes = append(scopes, s.Name)
			}
		}
		if len(scopes) == 0 && (!code || ns == "") {
			return base, "", nil
		}
		key := "scopes=" + strings.Join(scopes, ",")
		if code {
			key = "namespace=" + ns
		}
		if ex, ok := byKey[key]; ok {
			return ex, key, nil
		}
		p, err := policyOf(ns)
		if err != nil {
			return nil, key, err
		}
		ex := *base
		ex.Policy = p
		byKey[key] = &ex
		return &ex, key, nil
	}
}

// manifestWorkloads reads the workloads of the manifests -f names.
func manifestWorkloads(af *auditFlags, stdin io.Reader) ([]audit.Workload, error) {
	opts := audit.ManifestOptions{}
	if len(af.namespaces) == 1 {
		opts.Namespace = af.namespaces[0]
	}
	var workloads []audit.Workload
	objects, files := 0, 0
	read := func(name string, r io.Reader) error {
		m, err := audit.ReadManifests(name, r, opts)
		if err != nil {
			return &exitError{code: exitUndecided, err: err}
		}
		objects += m.Objects
		workloads = append(workloads, m.Workloads...)
		return nil
	}
	usedStdin := false
	for _, name := range af.files {
		if name == "-" {
			if usedStdin {
				return nil, usageErrorf("-f -: standard input is named twice")
			}
			usedStdin = true
			if err := read("stdin", stdin); err != nil {
				return nil, err
			}
			continue
		}
		paths, err := manifestFiles(name, af.recursive)
		if err != nil {
			return nil, &exitError{code: exitUndecided, err: err}
		}
		for _, p := range paths {
			if files++; files > maxManifestFiles {
				return nil, &exitError{code: exitUndecided, err: fmt.Errorf("-f: more than %d files", maxManifestFiles)}
			}
			f, err := os.Open(p)
			if err != nil {
				return nil, &exitError{code: exitUndecided, err: err}
			}
			err = read(p, f)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if objects == 0 {
		return nil, &exitError{code: exitUndecided, err: fmt.Errorf("-f %s: no Kubernetes objects in the input", strings.Join(af.files, " "))}
	}
	return workloads, nil
}

// manifestFiles is name when it is a file; when it is a folder, its
// *.yaml, *.yml and *.json files in lexical order, and its subfolders'
// when recursive.
func manifestFiles(name string, recursive bool) ([]string, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{name}, nil
	}
	var paths []string
	err = filepath.WalkDir(name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != name && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if paths = append(paths, p); len(paths) > maxManifestFiles {
				return fmt.Errorf("-f %s: more than %d files", name, maxManifestFiles)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("-f %s: no *.yaml, *.yml or *.json files in the folder", name)
	}
	return paths, nil
}

// validNamespaces refuses names that are not Kubernetes namespace names
// (RFC 1123 labels).
func validNamespaces(names []string) error {
	for _, n := range names {
		ok := n != "" && len(n) <= 63 && n[0] != '-' && n[len(n)-1] != '-'
		for _, r := range n {
			ok = ok && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
		}
		if !ok {
			return usageErrorf("-n %q: not a namespace name (lower-case letters, digits and '-', at most 63)", n)
		}
	}
	return nil
}
