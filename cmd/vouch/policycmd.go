package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/policy/policytest"
)

func newPolicyCommand(stdin io.Reader) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Try policies before they ship: decide on saved reports, live subjects and test suites",
	}
	cmd.AddCommand(newPolicyTestCommand(stdin))
	return cmd
}

func newPolicyTestCommand(stdin io.Reader) *cobra.Command {
	var (
		gf      graphFlags
		vf      verifierFlags
		reports []string
		suite   string
		compare bool
		output  string
	)
	cmd := &cobra.Command{
		Use:   "test [flags] [SUBJECT...]",
		Short: "Decide with a policy on saved reports, live subjects or a test suite; --compare OLD NEW lists what would change",
		Long: `Test applies the policy section of a config file (--config) to report trees
and prints the verdicts as a table. The trees come from reports that
` + "`vouch verify -o json`" + ` saved (--report, no registry traffic: record once,
test many policies), or from SUBJECTs verified live with the config's
verifiers. Record reports with --verify-all so that every referrer is checked,
whatever policy recorded them.

--suite FILE runs a test suite (docs/policy-test.md): cases naming a report
file or a subject, a namespace and the expected verdict. Exit code 0 when
every case passes, 1 when one fails.

--compare OLD NEW (two config files) decides on the same reports and subjects
with both policies and lists every subject whose verdict changes, with both
reasons: the what-if before NEW ships. Exit code 0 when nothing changes, 1
when something does.

Without --suite or --compare the exit code is that of vouch verify: 0 when
every subject is allowed, 1 when one is denied, 2 when one is undecided.
Exit code 2 also when a file cannot be read, 64 on a usage error.

Rego and CEL policies need a vouch built with -tags policycode.`,
		Example: `  # Record once (every referrer checked), then test policies offline
  vouch verify --config vouch.yaml --verify-all -o json app:v1 app:v2 > reports.json
  vouch policy test --config new.yaml --report reports.json

  # What would change if new.yaml replaced vouch.yaml, in namespace prod
  vouch policy test --compare vouch.yaml new.yaml --report reports.json --namespace prod

  # A test suite, for CI
  vouch policy test --suite policy-tests.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageErrorf("-o must be text or json, not %q", output)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), gf.timeout)
			defer cancel()
			pt := &policyTest{cmd: cmd, stdin: stdin, gf: &gf, vf: &vf, json: output == "json"}
			switch {
			case compare:
				if len(args) < 2 {
					return usageErrorf("--compare needs two config files, OLD and NEW, before any SUBJECT")
				}
				if suite != "" {
					return usageErrorf("--compare and --suite do not go together")
				}
				if vf.configPath != "" {
					return usageErrorf("--compare takes its two config files as arguments, not --config")
				}
				return pt.compare(ctx, args[0], args[1], reports, args[2:])
			case suite != "":
				if len(args) > 0 || len(reports) > 0 {
					return usageErrorf("--suite takes its subjects and reports from the suite file")
				}
				return pt.suite(ctx, suite)
			}
			if vf.configPath == "" {
				return usageErrorf("policy test needs --config FILE (the policy to test), --suite or --compare")
			}
			if len(args) == 0 && len(reports) == 0 {
				return usageErrorf("policy test needs a --report FILE or a SUBJECT")
			}
			return pt.decide(ctx, reports, args)
		},
	}
	cmd.Flags().StringArrayVar(&reports, "report", nil, "a report `FILE` that vouch verify -o json wrote (repeatable)")
	cmd.Flags().StringVar(&suite, "suite", "", "run the test suite `FILE` (YAML, docs/policy-test.md)")
	cmd.Flags().BoolVar(&compare, "compare", false, "the first two arguments are config files OLD and NEW: list every subject whose verdict changes")
	cmd.Flags().StringVar(&vf.namespace, "namespace", "", "apply the policy as in this Kubernetes `NS`")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	vf.register(cmd.Flags())
	gf.register(cmd.Flags())
	return cmd
}

// policyTest holds what the modes of `vouch policy test` share.
type policyTest struct {
	cmd   *cobra.Command
	stdin io.Reader
	gf    *graphFlags
	vf    *verifierFlags
	json  bool
}

// decider loads the config file at path and returns a Decider for its
// policy section.
func (pt *policyTest) decider(ctx context.Context, path string) (*config.File, *policytest.Decider, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: err}
	}
	if cfg.Policy == nil {
		return nil, nil, &exitError{code: exitUndecided, err: fmt.Errorf("%s: no policy section to test", path)}
	}
	names := make([]string, 0, len(cfg.Verifiers))
	for _, v := range cfg.Verifiers {
		names = append(names, v.Name)
	}
	d, err := policytest.NewDecider(ctx, *cfg.Policy, names)
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: fmt.Errorf("config %s: %w", path, err)}
	}
	return cfg, d, nil
}

// live returns a function that verifies subjects with the verifiers of
// the config file at path, checking every referrer, and returns their
// report trees for a policy to decide on.
func (pt *policyTest) live(path string) policytest.Live {
	var exec *vouch.Executor
	return func(ctx context.Context, subject, _ string) (*vouch.Report, error) {
		refs, err := parseSubjects([]string{subject})
		if err != nil {
			return nil, err
		}
		if exec == nil {
			vf := *pt.vf
			vf.configPath, vf.namespace = path, ""
			cfg, err := loadConfig(pt.cmd.Flags(), pt.gf, &vf)
			if err != nil {
				return nil, err
			}
			verifiers, _, err := vf.build(pt.cmd.Context(), cfg)
			if err != nil {
				return nil, err
			}
			st, err := pt.gf.store(pt.stdin, refs)
			if err != nil {
				return nil, err
			}
			// The walk records; the policy under test decides afterwards.
			record := vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
				return vouch.Decision{Verdict: vouch.Allowed, Mode: vouch.ModeEnforce, Reason: "recorded"}, nil
			})
			exec = pt.gf.executor(st, verifiers, record)
			exec.VerifyAll = true
		}
		r, err := exec.Verify(ctx, refs[0])
		return r, err
	}
}

// gather returns the reports of the report files and of subjects,
// verified live with the config file at configPath.
func (pt *policyTest) gather(ctx context.Context, configPath string, files, subjects []string) ([]*vouch.Report, error) {
	var out []*vouch.Report
	for _, f := range files {
		rs, err := policytest.ReadReports(f)
		if err != nil {
			return nil, &exitError{code: exitUndecided, err: err}
		}
		out = append(out, rs.Subjects...)
	}
	live := pt.live(configPath)
	for _, s := range subjects {
		r, err := live(ctx, s, "")
		if r == nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (pt *policyTest) decide(ctx context.Context, files, subjects []string) error {
	_, d, err := pt.decider(ctx, pt.vf.configPath)
	if err != nil {
		return err
	}
	reports, err := pt.gather(ctx, pt.vf.configPath, files, subjects)
	if err != nil {
		return err
	}
	type row struct {
		Subject string `json:"subject"`
		policytest.Outcome
	}
	rows := make([]row, 0, len(reports))
	worst := vouch.Allowed
	for _, r := range reports {
		o := d.Decide(ctx, r, pt.vf.namespace)
		rows = append(rows, row{Subject: r.Subject, Outcome: o})
		switch {
		case o.Verdict == vouch.Denied:
			worst = vouch.Denied
		case o.Verdict == vouch.Undecided && worst != vouch.Denied:
			worst = vouch.Undecided
		}
	}
	out := pt.cmd.OutOrStdout()
	if pt.json {
		if err := writeJSON(out, map[string]any{"verdict": worst, "subjects": rows}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SUBJECT\tVERDICT\tREASON")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Subject, verdictWord(r.Outcome), r.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return verdictExit(worst)
}

func (pt *policyTest) suite(ctx context.Context, path string) error {
	s, err := policytest.ReadSuite(path)
	if err != nil {
		return &exitError{code: exitUndecided, err: err}
	}
	configPath := pt.vf.configPath
	if configPath == "" {
		configPath = s.Config
	}
	if configPath == "" {
		return usageErrorf("%s names no config, and no --config FILE is given", path)
	}
	_, d, err := pt.decider(ctx, configPath)
	if err != nil {
		return err
	}
	results := policytest.Run(ctx, s, d, pt.live(configPath))
	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
		}
	}
	out := pt.cmd.OutOrStdout()
	if pt.json {
		if err := writeJSON(out, map[string]any{"passed": len(results) - failed, "failed": failed, "results": results}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RESULT\tCASE\tSUBJECT\tNAMESPACE\tWANT\tGOT\tREASON")
		for _, r := range results {
			result := "PASS"
			if !r.Pass {
				result = "FAIL"
			}
			ns := r.Case.Namespace
			if ns == "" {
				ns = "-"
			}
			want := string(r.Case.Verdict)
			if r.Case.Reason != "" {
				want += fmt.Sprintf(" (%q)", r.Case.Reason)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", result, r.Case.Name, r.Subject, ns, want, verdictWord(r.Got), r.Got.Reason)
		}
		fmt.Fprintf(tw, "\n%d passed, %d failed\n", len(results)-failed, failed)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if failed > 0 {
		return &exitError{code: exitDenied, err: errSilent}
	}
	return nil
}

func (pt *policyTest) compare(ctx context.Context, oldPath, newPath string, files, subjects []string) error {
	_, old, err := pt.decider(ctx, oldPath)
	if err != nil {
		return err
	}
	_, nw, err := pt.decider(ctx, newPath)
	if err != nil {
		return err
	}
	if len(files) == 0 && len(subjects) == 0 {
		return usageErrorf("--compare needs a --report FILE or a SUBJECT")
	}
	reports, err := pt.gather(ctx, newPath, files, subjects)
	if err != nil {
		return err
	}
	changes := policytest.Compare(ctx, reports, pt.vf.namespace, old, nw)
	out := pt.cmd.OutOrStdout()
	if pt.json {
		if err := writeJSON(out, map[string]any{"subjects": len(reports), "changes": changes}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		if len(changes) > 0 {
			fmt.Fprintln(tw, "SUBJECT\tOLD\tNEW\tOLD REASON\tNEW REASON")
			for _, c := range changes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Subject, verdictWord(c.Old), verdictWord(c.New), c.Old.Reason, c.New.Reason)
			}
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "%d of %d subjects change verdict\n", len(changes), len(reports))
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(changes) > 0 {
		return &exitError{code: exitDenied, err: errSilent}
	}
	return nil
}

// verdictWord is a verdict, "allowed (waived)" when the mode or warnings
// allowed it.
func verdictWord(o policytest.Outcome) string {
	if o.Waived && o.Verdict == vouch.Allowed {
		return "allowed (waived)"
	}
	return string(o.Verdict)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
