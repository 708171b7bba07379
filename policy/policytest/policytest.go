// Package policytest evaluates policies against recorded reports: the
// "what if" before a policy ships. It reads reports that `vouch verify -o
// json` saved (ReadReports), decides on their report trees again with
// another policy (Decider), runs test suites of expected verdicts
// (Suite, Run), and compares two policies on the same reports (Compare).
// Nothing in it reaches a registry; docs/policy-test.md documents the
// suite format.
package policytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/untrusted"
	"github.com/vouch-project/vouch/policy"
)

// MaxReportBytes bounds a saved report file.
const MaxReportBytes = 64 << 20

// maxReportDepth bounds the nesting of a report document: a report tree
// is at most limits.maxDepth deep, and verifier details nest a little.
const maxReportDepth = 512

// MaxSuiteBytes bounds a test-suite file.
const MaxSuiteBytes = 4 << 20

// SuiteVersion is the version of the test-suite format.
const SuiteVersion = "vouch.policy.test/v1"

// ReadReports reads a report file that `vouch verify -o json` wrote.
func ReadReports(path string) (*vouch.Reports, error) {
	data, err := untrusted.ReadFile(path, MaxReportBytes)
	if err != nil {
		return nil, err
	}
	return ParseReports(data, path)
}

// ParseReports decodes a report document that `vouch verify -o json`
// wrote; name labels it in errors.
func ParseReports(data []byte, path string) (*vouch.Reports, error) {
	if err := untrusted.CheckJSONDepth(data, maxReportDepth); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var r vouch.Reports
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: not a vouch report: %w", path, err)
	}
	if r.Version != vouch.ReportVersion {
		return nil, fmt.Errorf("%s: version %q is not %q (a `vouch verify -o json` report)", path, r.Version, vouch.ReportVersion)
	}
	for i, s := range r.Subjects {
		if s == nil || s.Reference == "" {
			return nil, fmt.Errorf("%s: subjects[%d]: no reference", path, i)
		}
	}
	return &r, nil
}

// Decider decides on recorded report trees with one policy: a config
// policy section, whose Rego and CEL policies are compiled once.
type Decider struct {
	cfg       policy.Config
	verifiers []string
	programs  policy.Programs
	byNS      map[string]vouch.Policy
}

// NewDecider returns a Decider for cfg, whose requirements may name the
// verifiers listed (those of the config file it comes from).
func NewDecider(ctx context.Context, cfg policy.Config, verifiers []string) (*Decider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	progs, err := policy.Compile(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d := &Decider{cfg: cfg, verifiers: verifiers, programs: progs, byNS: map[string]vouch.Policy{}}
	if _, err := d.policy(""); err != nil {
		return nil, err
	}
	return d, nil
}

// policy returns the policy in namespace ns.
func (d *Decider) policy(ns string) (vouch.Policy, error) {
	if p, ok := d.byNS[ns]; ok {
		return p, nil
	}
	p, err := policy.New(d.cfg, d.verifiers, policy.InNamespace(ns), policy.WithPrograms(d.programs))
	if err != nil {
		return nil, err
	}
	d.byNS[ns] = p
	return p, nil
}

// Outcome is a verdict with its reason.
type Outcome struct {
	// Verdict is allowed, denied or undecided.
	Verdict vouch.Verdict `json:"verdict"`
	// Reason says why.
	Reason string `json:"reason"`
	// Waived is true when the mode (warn, audit) allowed what the
	// requirements deny, or the policy allowed with warnings.
	Waived bool `json:"waived,omitempty"`
}

// Decide returns the verdict of the Decider's policy on the recorded
// report r in namespace ns. A report without a graph (its subject could
// not be resolved) is undecided, as it was; a policy error is undecided.
func (d *Decider) Decide(ctx context.Context, r *vouch.Report, ns string) Outcome {
	ref, err := vouch.ParseReference(r.Reference)
	if err != nil {
		return Outcome{Verdict: vouch.Undecided, Reason: "could not decide: " + err.Error()}
	}
	p, err := d.policy(ns)
	if err != nil {
		return Outcome{Verdict: vouch.Undecided, Reason: "could not decide: " + err.Error()}
	}
	if s, ok := p.(vouch.Screener); ok {
		if dec, ok := s.Screen(ctx, ref); ok {
			return Outcome{Verdict: dec.Verdict, Reason: dec.Reason, Waived: dec.Waived}
		}
	}
	if r.Root == nil {
		return Outcome{Verdict: vouch.Undecided, Reason: "the report has no graph: " + r.Reason}
	}
	dec, err := p.Decide(ctx, ref, r.Root)
	if err != nil {
		return Outcome{Verdict: vouch.Undecided, Reason: "could not decide: policy: " + err.Error()}
	}
	return Outcome{Verdict: dec.Verdict, Reason: dec.Reason, Waived: dec.Waived}
}

// Suite is a test-suite file: cases of subjects and the verdicts a policy
// must give them.
type Suite struct {
	// Version is SuiteVersion. Required.
	Version string `yaml:"version"`
	// Config is the vouch config file whose policy is tested, relative to
	// the suite's folder. Optional: the command line may name it.
	Config string `yaml:"config,omitempty"`
	// Cases are the tests. Required.
	Cases []Case `yaml:"cases"`
}

// Case is one test: a subject, where its report tree comes from, the
// namespace, and the expected verdict.
type Case struct {
	// Name labels the case in results. Required, unique.
	Name string `yaml:"name"`
	// Report is a file `vouch verify -o json` wrote, relative to the
	// suite's folder. Optional: without it the subject is verified live.
	Report string `yaml:"report,omitempty"`
	// Subject picks the subject of Report (its subject or reference as
	// written there); required without Report, or when Report holds more
	// than one subject.
	Subject string `yaml:"subject,omitempty"`
	// Namespace is the Kubernetes namespace the policy is applied in.
	// Optional; default none, as for the CLI.
	Namespace string `yaml:"namespace,omitempty"`
	// Verdict is the expected verdict: allowed, denied or undecided.
	// Required.
	Verdict vouch.Verdict `yaml:"verdict"`
	// Reason, when set, must occur in the verdict's reason. Optional.
	Reason string `yaml:"reason,omitempty"`
}

// ReadSuite reads and checks a test-suite file; the paths in it are made
// relative to the working directory.
func ReadSuite(path string) (*Suite, error) {
	data, err := untrusted.ReadFile(path, MaxSuiteBytes)
	if err != nil {
		return nil, err
	}
	return ParseSuite(data, path)
}

// ParseSuite decodes and checks a test suite read from path, whose folder
// the paths in it are relative to.
func ParseSuite(data []byte, path string) (*Suite, error) {
	var s Suite
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the file is empty", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	s.Config = rel(s.Config)
	for i := range s.Cases {
		s.Cases[i].Report = rel(s.Cases[i].Report)
	}
	return &s, nil
}

func (s *Suite) validate() error {
	if s.Version != SuiteVersion {
		return fmt.Errorf("version: %q is not %q", s.Version, SuiteVersion)
	}
	if len(s.Cases) == 0 {
		return errors.New("cases: at least one case is required")
	}
	names := map[string]bool{}
	for i, c := range s.Cases {
		p := fmt.Sprintf("cases[%d]", i)
		if c.Name == "" {
			return fmt.Errorf("%s.name: required", p)
		}
		if names[c.Name] {
			return fmt.Errorf("%s.name: %q is used twice", p, c.Name)
		}
		names[c.Name] = true
		if c.Report == "" && c.Subject == "" {
			return fmt.Errorf("%s: needs a report or a subject", p)
		}
		switch c.Verdict {
		case vouch.Allowed, vouch.Denied, vouch.Undecided:
		default:
			return fmt.Errorf("%s.verdict: %q is not allowed, denied or undecided", p, c.Verdict)
		}
	}
	return nil
}

// Pick returns the report of subject in rs: the only one when subject is
// "", else the one whose subject or reference is subject, or whose
// reference starts with subject followed by "@".
func Pick(rs *vouch.Reports, subject string) (*vouch.Report, error) {
	if subject == "" {
		if len(rs.Subjects) != 1 {
			return nil, fmt.Errorf("the report holds %d subjects: name one", len(rs.Subjects))
		}
		return rs.Subjects[0], nil
	}
	for _, r := range rs.Subjects {
		if r.Subject == subject || r.Reference == subject || strings.HasPrefix(r.Reference, subject+"@") {
			return r, nil
		}
	}
	return nil, fmt.Errorf("the report has no subject %q", subject)
}

// Result is the outcome of one case.
type Result struct {
	// Case is the case run.
	Case Case `json:"case"`
	// Subject is the subject decided on.
	Subject string `json:"subject"`
	// Got is the policy's verdict.
	Got Outcome `json:"got"`
	// Pass is true when Got matches the case.
	Pass bool `json:"pass"`
}

// Live verifies a subject that a case names without a report, in a
// namespace, and returns its report; nil when live subjects are not
// available.
type Live func(ctx context.Context, subject, namespace string) (*vouch.Report, error)

// Run runs every case of s with d, reading each report once; a case
// without a report is verified by live (nil: such a case fails).
func Run(ctx context.Context, s *Suite, d *Decider, live Live) []Result {
	cache := map[string]*vouch.Reports{}
	var out []Result
	for _, c := range s.Cases {
		res := Result{Case: c, Subject: c.Subject}
		got, subject, err := runCase(ctx, c, d, live, cache)
		if err != nil {
			got = Outcome{Verdict: vouch.Undecided, Reason: "could not run the case: " + err.Error()}
		}
		if subject != "" {
			res.Subject = subject
		}
		res.Got = got
		res.Pass = err == nil && got.Verdict == c.Verdict && strings.Contains(got.Reason, c.Reason)
		out = append(out, res)
	}
	return out
}

func runCase(ctx context.Context, c Case, d *Decider, live Live, cache map[string]*vouch.Reports) (Outcome, string, error) {
	if c.Report == "" {
		if live == nil {
			return Outcome{}, "", errors.New("no report, and live subjects are not available")
		}
		r, err := live(ctx, c.Subject, c.Namespace)
		if r == nil {
			return Outcome{}, "", err
		}
		return d.Decide(ctx, r, c.Namespace), r.Subject, nil
	}
	rs, ok := cache[c.Report]
	if !ok {
		var err error
		if rs, err = ReadReports(c.Report); err != nil {
			return Outcome{}, "", err
		}
		cache[c.Report] = rs
	}
	r, err := Pick(rs, c.Subject)
	if err != nil {
		return Outcome{}, "", fmt.Errorf("%s: %w", c.Report, err)
	}
	return d.Decide(ctx, r, c.Namespace), r.Subject, nil
}

// Change is a subject whose verdict differs between two policies.
type Change struct {
	// Subject is the report's subject.
	Subject string `json:"subject"`
	// Old and New are the two policies' verdicts.
	Old Outcome `json:"old"`
	New Outcome `json:"new"`
}

// Compare decides on every report with old and with new, in namespace
// ns, and returns the subjects whose verdict (or waiver) differs, in the
// reports' order.
func Compare(ctx context.Context, reports []*vouch.Report, ns string, old, new *Decider) []Change {
	var out []Change
	for _, r := range reports {
		o, n := old.Decide(ctx, r, ns), new.Decide(ctx, r, ns)
		if o.Verdict != n.Verdict || o.Waived != n.Waived {
			out = append(out, Change{Subject: r.Subject, Old: o, New: n})
		}
	}
	return out
}
