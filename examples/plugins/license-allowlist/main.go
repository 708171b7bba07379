// Command license-allowlist is a sample vouch plugin (protocol
// vouch.plugin/v1, docs/plugins.md): it reads the SPDX JSON SBOMs among an
// artifact's blobs and fails when a package's license is not in the
// allow-list that vouch's config passes as parameters.
//
// It uses only the standard library and none of vouch's code, as a plugin
// written by a third party would.
//
// Parameters:
//
//	allowed           list of SPDX license identifiers ("MIT", "Apache-2.0",
//	                  "LicenseRef-acme"); matched case-insensitively. Required.
//	allowNoAssertion  accept packages whose licenseConcluded and
//	                  licenseDeclared are both NOASSERTION, NONE or absent.
//	                  Optional; default false.
//
// Each of licenseConcluded and licenseDeclared that names a license must be
// satisfied by the allow-list: an SPDX license expression is satisfied when
// every license of an AND is allowed, some side of an OR is, and for
// "X WITH exception" X is (or the whole "X WITH exception" is listed).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Version is the protocol this plugin speaks.
const Version = "vouch.plugin/v1"

// Bounds on what the plugin reads.
const (
	maxRequestBytes  = 256 << 20 // vouch inlines at most maxBlobBytes, base64-encoded
	maxExpression    = 4096      // bytes in one license expression
	maxParenDepth    = 32        // nesting of parentheses in one expression
	maxListedReasons = 5         // violations named in the reason
	maxListedDetails = 100       // violations listed in details
)

type request struct {
	Version  string `json:"version"`
	Verifier struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"verifier"`
	Blobs []struct {
		Descriptor struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"descriptor"`
		Data []byte `json:"data"`
	} `json:"blobs"`
}

type parameters struct {
	Allowed          []string `json:"allowed"`
	AllowNoAssertion bool     `json:"allowNoAssertion"`
}

type response struct {
	Version string         `json:"version"`
	Outcome string         `json:"outcome"`
	Reason  string         `json:"reason,omitempty"`
	Details map[string]any `json:"details,omitempty"`
}

// spdxDocument is the part of an SPDX 2.x JSON document the plugin reads.
type spdxDocument struct {
	SPDXVersion string `json:"spdxVersion"`
	Name        string `json:"name"`
	Packages    []struct {
		SPDXID           string `json:"SPDXID"`
		Name             string `json:"name"`
		VersionInfo      string `json:"versionInfo"`
		LicenseConcluded string `json:"licenseConcluded"`
		LicenseDeclared  string `json:"licenseDeclared"`
	} `json:"packages"`
}

// violation is one package whose license is not allowed.
type violation struct {
	Package string `json:"package"`
	Field   string `json:"field"`
	License string `json:"license"`
}

func main() {
	resp := run(os.Stdin)
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		fmt.Fprintln(os.Stderr, "license-allowlist: write response:", err)
		os.Exit(1)
	}
}

// run answers one request. Problems with the request or the parameters are
// outcome "error": the plugin could not decide.
func run(in io.Reader) response {
	data, err := io.ReadAll(io.LimitReader(in, maxRequestBytes+1))
	if err != nil {
		return answer("error", "read request: "+err.Error(), nil)
	}
	if len(data) > maxRequestBytes {
		return answer("error", fmt.Sprintf("the request is larger than %d bytes", maxRequestBytes), nil)
	}
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		return answer("error", "the request is not JSON: "+err.Error(), nil)
	}
	if req.Version != Version {
		return answer("error", fmt.Sprintf("request version %q; this plugin speaks %s", req.Version, Version), nil)
	}
	var params parameters
	if len(req.Verifier.Parameters) > 0 {
		if err := json.Unmarshal(req.Verifier.Parameters, &params); err != nil {
			return answer("error", "parameters: "+err.Error(), nil)
		}
	}
	if len(params.Allowed) == 0 {
		return answer("error", "parameters.allowed is required: the SPDX license identifiers to allow", nil)
	}
	allowed := map[string]bool{}
	for _, id := range params.Allowed {
		allowed[strings.ToLower(strings.TrimSpace(id))] = true
	}

	var docs, packages int
	var found []violation
	for _, b := range req.Blobs {
		var doc spdxDocument
		if json.Unmarshal(b.Data, &doc) != nil || !strings.HasPrefix(doc.SPDXVersion, "SPDX-2.") {
			continue // not an SPDX 2.x JSON document: some other layer
		}
		docs++
		for _, p := range doc.Packages {
			packages++
			found = append(found, check(p.Name, p.VersionInfo, p.LicenseConcluded, p.LicenseDeclared, allowed, params.AllowNoAssertion)...)
		}
	}
	if docs == 0 {
		return answer("failed", fmt.Sprintf("no SPDX 2.x JSON document among the artifact's %d blobs", len(req.Blobs)), nil)
	}
	details := map[string]any{"documents": docs, "packages": packages}
	if len(found) == 0 {
		return answer("passed", fmt.Sprintf("all licenses of %d packages are allowed", packages), details)
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].Package < found[j].Package })
	details["violations"] = found[:min(len(found), maxListedDetails)]
	details["violationCount"] = len(found)
	var named []string
	for _, v := range found[:min(len(found), maxListedReasons)] {
		named = append(named, fmt.Sprintf("%s (%s %s)", v.Package, v.Field, v.License))
	}
	reason := fmt.Sprintf("%d license finding(s) not in the allow-list: %s", len(found), strings.Join(named, ", "))
	if len(found) > maxListedReasons {
		reason += fmt.Sprintf(" and %d more", len(found)-maxListedReasons)
	}
	return answer("failed", reason, details)
}

// check returns the violations of one package.
func check(name, version, concluded, declared string, allowed map[string]bool, allowNoAssertion bool) []violation {
	pkg := name
	if version != "" {
		pkg += "@" + version
	}
	var out []violation
	asserted := false
	for _, f := range []struct{ field, expr string }{{"licenseConcluded", concluded}, {"licenseDeclared", declared}} {
		expr := strings.TrimSpace(f.expr)
		if expr == "" || expr == "NOASSERTION" || expr == "NONE" {
			continue
		}
		asserted = true
		ok, err := satisfied(expr, allowed)
		if err != nil {
			out = append(out, violation{pkg, f.field, fmt.Sprintf("%q (%v)", expr, err)})
		} else if !ok {
			out = append(out, violation{pkg, f.field, expr})
		}
	}
	if !asserted && !allowNoAssertion {
		out = append(out, violation{pkg, "licenseConcluded", "NOASSERTION"})
	}
	return out
}

// satisfied evaluates an SPDX license expression against the allow-list
// (SPDX specification 2.3, Annex D).
func satisfied(expr string, allowed map[string]bool) (bool, error) {
	if len(expr) > maxExpression {
		return false, errors.New("expression too long")
	}
	p := &parser{tokens: tokenize(expr), allowed: allowed}
	ok, err := p.or(0)
	if err != nil {
		return false, err
	}
	if p.pos != len(p.tokens) {
		return false, fmt.Errorf("unexpected %q", p.tokens[p.pos])
	}
	return ok, nil
}

func tokenize(expr string) []string {
	expr = strings.NewReplacer("(", " ( ", ")", " ) ").Replace(expr)
	return strings.Fields(expr)
}

type parser struct {
	tokens  []string
	pos     int
	allowed map[string]bool
}

func (p *parser) peek() string {
	if p.pos < len(p.tokens) {
		return p.tokens[p.pos]
	}
	return ""
}

// or := and ("OR" and)*
func (p *parser) or(depth int) (bool, error) {
	ok, err := p.and(depth)
	for err == nil && strings.EqualFold(p.peek(), "OR") {
		p.pos++
		var right bool
		right, err = p.and(depth)
		ok = ok || right
	}
	return ok, err
}

// and := with ("AND" with)*
func (p *parser) and(depth int) (bool, error) {
	ok, err := p.with(depth)
	for err == nil && strings.EqualFold(p.peek(), "AND") {
		p.pos++
		var right bool
		right, err = p.with(depth)
		ok = ok && right
	}
	return ok, err
}

// with := atom ("WITH" exception)?
func (p *parser) with(depth int) (bool, error) {
	start := p.pos
	ok, err := p.atom(depth)
	if err != nil || !strings.EqualFold(p.peek(), "WITH") {
		return ok, err
	}
	if p.pos-start != 1 {
		return false, errors.New("WITH must follow a license identifier")
	}
	p.pos++
	exception := p.peek()
	if exception == "" || exception == "(" || exception == ")" {
		return false, errors.New("WITH needs an exception identifier")
	}
	p.pos++
	whole := strings.ToLower(p.tokens[start] + " WITH " + exception)
	return ok || p.allowed[whole], nil
}

// atom := identifier | "(" or ")"
func (p *parser) atom(depth int) (bool, error) {
	tok := p.peek()
	switch {
	case tok == "":
		return false, errors.New("unexpected end of expression")
	case tok == "(":
		if depth >= maxParenDepth {
			return false, errors.New("parentheses nest too deep")
		}
		p.pos++
		ok, err := p.or(depth + 1)
		if err != nil {
			return false, err
		}
		if p.peek() != ")" {
			return false, errors.New("missing )")
		}
		p.pos++
		return ok, nil
	case tok == ")" || strings.EqualFold(tok, "AND") || strings.EqualFold(tok, "OR") || strings.EqualFold(tok, "WITH"):
		return false, fmt.Errorf("unexpected %q", tok)
	}
	p.pos++
	return p.allowed[strings.ToLower(tok)], nil
}

func answer(outcome, reason string, details map[string]any) response {
	return response{Version: Version, Outcome: outcome, Reason: reason, Details: details}
}
