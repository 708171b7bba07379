package vulnreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vouch-project/vouch/internal/untrusted"
)

// MaxJSONDepth bounds the nesting of arrays and objects in a report.
// SARIF as scanners write it nests about ten levels; deeper documents are
// refused before encoding/json sees them.
const MaxJSONDepth = 100

// Severity is a finding's severity, from low to critical.
type Severity int

// Severities, ordered: a higher one is worse.
const (
	// Unknown: the report gives no severity for the finding.
	Unknown Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = []string{"unknown", "low", "medium", "high", "critical"}

// String names the severity in lower case; out-of-range values are
// "unknown".
func (s Severity) String() string {
	if s < Unknown || s > Critical {
		return "unknown"
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name, ignoring case; "negligible" (Grype,
// Debian) counts as low.
func ParseSeverity(s string) (Severity, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return Critical, true
	case "high":
		return High, true
	case "medium", "moderate":
		return Medium, true
	case "low", "negligible":
		return Low, true
	case "unknown":
		return Unknown, true
	}
	return Unknown, false
}

// SeverityOfScore maps a CVSS score to a severity as GitHub code scanning,
// Trivy and Grype do: 9.0 and over critical, 7.0 high, 4.0 medium, over 0
// low, and 0 (no score) unknown.
func SeverityOfScore(score float64) Severity {
	switch {
	case score >= 9:
		return Critical
	case score >= 7:
		return High
	case score >= 4:
		return Medium
	case score > 0:
		return Low
	}
	return Unknown
}

// Report is what vouch reads from a SARIF 2.1.0 log.
type Report struct {
	// Runs are the log's runs: one per scanner invocation.
	Runs []Run
	// Findings are the results of every run.
	Findings []Finding
}

// Run is one scan.
type Run struct {
	// Tool and Version are tool.driver.name and its version (or
	// semanticVersion).
	Tool, Version string
	// Time is when the scan ended (invocations[].endTimeUtc), else when it
	// started (startTimeUtc); zero when the run records neither. Of several
	// invocations the earliest counts.
	Time time.Time
}

// Finding is one result of a run.
type Finding struct {
	// RuleID is the result's rule: a vulnerability id for Trivy
	// ("CVE-2021-44228"), the id and the package for Grype
	// ("CVE-2021-44228-log4j-core").
	RuleID string
	// IDs are the vulnerability ids (CVE-…, GHSA-…) in RuleID; RuleID
	// itself when it holds none.
	IDs []string
	// Severity is the highest that the result and its rule give, by CVSS
	// score (security-severity), by severity tag, or by "Severity: X" /
	// "a X vulnerability" in their texts.
	Severity Severity
	// Score is the CVSS score of the security-severity property; 0 when
	// absent.
	Score float64
	// Package and Version are the vulnerable package, when the message
	// names it as Trivy or Grype write it.
	Package, Version string
	// Message is the result's message text, as the report writes it.
	Message string
	// Level is the result's SARIF level (error, warning, note, none), or
	// its rule's default.
	Level string
	// Suppression is the accepted suppression that takes the finding out
	// of the policy's reach, or nil when the finding counts. See
	// suppressionOf for when a result is suppressed.
	Suppression *Suppression
}

// Suppression is an accepted request, recorded in the report, not to count
// a finding (SARIF 2.1.0 §3.35, suppression object).
type Suppression struct {
	// Kind is where the suppression is kept: "inSource" (beside the code)
	// or "external" (a scanner's ignore file, a triage database).
	Kind string
	// Justification is the reason the report gives, made safe to show and
	// cut to MaxJustification bytes; "" when it gives none.
	Justification string
	// VEX is the VEX statement behind a suppression of kind "vex", else
	// nil.
	VEX *VEXSuppression
}

// MaxJustification bounds the justification kept from a suppression.
const MaxJustification = 256

// Suppression statuses (SARIF 2.1.0 §3.35.3). A suppression without a
// status is accepted.
const (
	SuppressionAccepted    = "accepted"
	SuppressionUnderReview = "underReview"
	SuppressionRejected    = "rejected"
)

// ID is the finding's first vulnerability id, or its rule id.
func (f *Finding) ID() string {
	if len(f.IDs) > 0 {
		return f.IDs[0]
	}
	if f.RuleID != "" {
		return f.RuleID
	}
	return "(no rule id)"
}

// The subset of SARIF 2.1.0 that vouch reads
// (https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html).
type sarifLog struct {
	Version *string     `json:"version"`
	Runs    *[]sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool *struct {
		Driver *sarifDriver `json:"driver"`
	} `json:"tool"`
	Results     *[]sarifResult    `json:"results"`
	Invocations []sarifInvocation `json:"invocations"`
}

type sarifDriver struct {
	Name            string      `json:"name"`
	Version         string      `json:"version"`
	SemanticVersion string      `json:"semanticVersion"`
	Rules           []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string        `json:"id"`
	ShortDescription     *sarifMessage `json:"shortDescription"`
	Help                 *sarifMessage `json:"help"`
	DefaultConfiguration *struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
	Properties sarifProperties `json:"properties"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifProperties struct {
	// SecuritySeverity is a CVSS score, written as a string ("9.8") by
	// Trivy and Grype as GitHub asks, or as a number by some tools.
	SecuritySeverity json.RawMessage `json:"security-severity"`
	Tags             []string        `json:"tags"`
}

type sarifResult struct {
	RuleID    string `json:"ruleId"`
	RuleIndex *int   `json:"ruleIndex"`
	Rule      *struct {
		ID    string `json:"id"`
		Index *int   `json:"index"`
	} `json:"rule"`
	Kind          string          `json:"kind"`
	Level         string          `json:"level"`
	BaselineState string          `json:"baselineState"`
	Message       sarifMessage    `json:"message"`
	Properties    sarifProperties `json:"properties"`
	// Suppressions is absent or null when the tool says nothing about
	// suppression, [] when the result is not suppressed (§3.27.23).
	Suppressions []sarifSuppression `json:"suppressions"`
}

type sarifSuppression struct {
	Kind          string  `json:"kind"`
	Status        *string `json:"status"`
	Justification string  `json:"justification"`
}

type sarifInvocation struct {
	StartTimeUTC        string `json:"startTimeUtc"`
	EndTimeUTC          string `json:"endTimeUtc"`
	ExecutionSuccessful *bool  `json:"executionSuccessful"`
}

// ParseSARIF reads a SARIF 2.1.0 log as Trivy and Grype write it. It is
// strict about what it needs: valid JSON no deeper than MaxJSONDepth,
// version "2.1.0", a runs array, and in each run a tool driver with a
// name, a results array (SARIF's sign that the scan completed) and no
// invocation that reports failure. Results of kind pass, informational
// or notApplicable, and results whose baselineState is absent (gone since
// the baseline), are not findings. A result with an accepted suppression
// is a finding whose Suppression is set.
func ParseSARIF(data []byte) (*Report, error) {
	if err := untrusted.CheckJSONDepth(data, MaxJSONDepth); err != nil {
		return nil, err
	}
	var log sarifLog
	if err := json.Unmarshal(data, &log); err != nil {
		return nil, untrusted.JSONError(err)
	}
	if log.Version == nil {
		return nil, errors.New("no version: not a SARIF log")
	}
	if *log.Version != "2.1.0" {
		return nil, fmt.Errorf("unsupported SARIF version %q (vouch reads 2.1.0)", *log.Version)
	}
	if log.Runs == nil {
		return nil, errors.New("no runs array")
	}
	if len(*log.Runs) == 0 {
		return nil, errors.New("the log has no runs: nothing shows that a scan happened")
	}
	rep := &Report{}
	for i := range *log.Runs {
		run := &(*log.Runs)[i]
		if run.Tool == nil || run.Tool.Driver == nil || strings.TrimSpace(run.Tool.Driver.Name) == "" {
			return nil, fmt.Errorf("runs[%d] names no tool (tool.driver.name)", i)
		}
		d := run.Tool.Driver
		r := Run{Tool: d.Name, Version: d.Version}
		if r.Version == "" {
			r.Version = d.SemanticVersion
		}
		for j, inv := range run.Invocations {
			if inv.ExecutionSuccessful != nil && !*inv.ExecutionSuccessful {
				return nil, fmt.Errorf("runs[%d] (%s): invocations[%d] reports that the scan failed (executionSuccessful false)", i, d.Name, j)
			}
			for _, field := range []struct{ name, value string }{{"endTimeUtc", inv.EndTimeUTC}, {"startTimeUtc", inv.StartTimeUTC}} {
				if field.value == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, field.value)
				if err != nil {
					return nil, fmt.Errorf("runs[%d].invocations[%d].%s: %q is not an RFC 3339 time", i, j, field.name, untrusted.Text(field.value, 40))
				}
				if r.Time.IsZero() || t.Before(r.Time) {
					r.Time = t
				}
				break
			}
		}
		if run.Results == nil {
			return nil, fmt.Errorf("runs[%d] (%s) has no results array: the scan did not complete", i, d.Name)
		}
		rep.Runs = append(rep.Runs, r)

		byID := make(map[string]*sarifRule, len(d.Rules))
		for k := range d.Rules {
			if _, dup := byID[d.Rules[k].ID]; !dup {
				byID[d.Rules[k].ID] = &d.Rules[k]
			}
		}
		for k := range *run.Results {
			res := &(*run.Results)[k]
			switch res.Kind {
			case "pass", "informational", "notApplicable":
				continue
			}
			if res.BaselineState == "absent" {
				continue
			}
			rep.Findings = append(rep.Findings, finding(res, d.Rules, byID))
		}
	}
	return rep, nil
}

// finding reads one result with its rule.
func finding(res *sarifResult, rules []sarifRule, byID map[string]*sarifRule) Finding {
	id := res.RuleID
	index := res.RuleIndex
	if res.Rule != nil {
		if id == "" {
			id = res.Rule.ID
		}
		if index == nil {
			index = res.Rule.Index
		}
	}
	// ruleId wins over ruleIndex: older Grype wrote ruleIndex 0 for every
	// result.
	rule := byID[id]
	if rule == nil && index != nil && *index >= 0 && *index < len(rules) {
		rule = &rules[*index]
		if id == "" {
			id = rule.ID
		}
	}
	f := Finding{RuleID: id, Level: res.Level, Message: res.Message.Text}
	f.IDs = vulnIDs(id)

	var texts []string
	texts = append(texts, res.Message.Text)
	f.Score = score(res.Properties.SecuritySeverity)
	f.Severity = max(SeverityOfScore(f.Score), tagSeverity(res.Properties.Tags))
	if rule != nil {
		if s := score(rule.Properties.SecuritySeverity); s > f.Score {
			f.Score = s
		}
		f.Severity = max(f.Severity, SeverityOfScore(f.Score), tagSeverity(rule.Properties.Tags))
		if rule.Help != nil {
			texts = append(texts, rule.Help.Text)
		}
		if rule.ShortDescription != nil {
			texts = append(texts, rule.ShortDescription.Text)
		}
		if f.Level == "" && rule.DefaultConfiguration != nil {
			f.Level = rule.DefaultConfiguration.Level
		}
	}
	for _, t := range texts {
		f.Severity = max(f.Severity, textSeverity(t))
	}
	f.Package, f.Version = packageOf(res.Message.Text)
	f.Suppression = suppressionOf(res.Suppressions)
	return f
}

// suppressionOf decides whether a result is suppressed, as the SARIF SDK
// and GitHub code scanning do: when at least one of its suppressions is
// accepted (a status of "accepted", or none) and none is under review or
// rejected. A status that SARIF does not define counts as not accepted, so
// that a misspelt or future status never hides a finding. It returns the
// first accepted suppression, or nil.
func suppressionOf(list []sarifSuppression) *Suppression {
	var accepted *sarifSuppression
	for i := range list {
		s := &list[i]
		if s.Status != nil && *s.Status != SuppressionAccepted {
			return nil
		}
		if accepted == nil {
			accepted = s
		}
	}
	if accepted == nil {
		return nil
	}
	return &Suppression{
		Kind:          untrusted.Text(accepted.Kind, 40),
		Justification: untrusted.Text(accepted.Justification, MaxJustification),
	}
}

// score reads a security-severity property: a CVSS score from 0 to 10,
// as a string or a number; 0 when absent or out of range.
func score(raw json.RawMessage) float64 {
	if len(raw) == 0 {
		return 0
	}
	s := string(raw)
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || v > 10 {
		return 0
	}
	return v
}

// tagSeverity reads Trivy's severity tag ("CRITICAL").
func tagSeverity(tags []string) Severity {
	best := Unknown
	for _, t := range tags {
		if s, ok := ParseSeverity(t); ok && s > best {
			best = s
		}
	}
	return best
}

// Compiled on first use, not when vouch starts (every command pays for
// package-level work at start-up).
var (
	// "Severity: CRITICAL" (Trivy's message and help, Grype's help).
	severityLine = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\bseverity:\s*(critical|high|medium|moderate|low|negligible)\b`)
	})
	// "A critical vulnerability in …" (Grype's message and description).
	severityWord = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\b(critical|high|medium|moderate|low|negligible) vulnerability\b`)
	})
	// Trivy: "Package: log4j-core\nInstalled Version: 2.14.1".
	trivyPackage = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^Package: (\S+)\s*$`) })
	trivyVersion = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^Installed Version: (\S+)\s*$`) })
	// Grype: "… package: log4j-core, version 2.14.1 was found …".
	grypePackage = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`package: ([^,\s]+), version (\S+)`) })
	// Vulnerability ids inside a rule id.
	vulnID = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\b(CVE-[0-9]{4}-[0-9]{4,}|GHSA(?:-[23456789cfghjmpqrvwx]{4}){3})`)
	})
)

func textSeverity(s string) Severity {
	best := Unknown
	for _, re := range []*regexp.Regexp{severityLine(), severityWord()} {
		for _, m := range re.FindAllStringSubmatch(s, 4) {
			if v, ok := ParseSeverity(m[1]); ok && v > best {
				best = v
			}
		}
	}
	return best
}

func packageOf(msg string) (string, string) {
	if m := trivyPackage().FindStringSubmatch(msg); m != nil {
		version := ""
		if v := trivyVersion().FindStringSubmatch(msg); v != nil {
			version = v[1]
		}
		return m[1], version
	}
	if m := grypePackage().FindStringSubmatch(msg); m != nil {
		return m[1], m[2]
	}
	return "", ""
}

func vulnIDs(ruleID string) []string {
	var ids []string
	for _, m := range vulnID().FindAllString(ruleID, 8) {
		ids = append(ids, strings.ToUpper(m[:4])+m[4:])
	}
	if len(ids) == 0 && ruleID != "" {
		ids = []string{ruleID}
	}
	return ids
}
