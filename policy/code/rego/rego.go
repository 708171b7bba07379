// Package rego compiles and evaluates vouch policies written in Rego (OPA
// v1) over the input document of package code. A policy is one or more
// modules of one package (default "vouch") that define the partial set
// rule deny, and optionally warn:
//
//	package vouch
//
//	deny contains msg if {
//		not some_verified_signature
//		msg := "no verified signature"
//	}
//
// docs/policy-rego.md documents the input, the answer and the limits.
package rego

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/vouch-project/vouch/policy/code"
)

// DefaultPackage is the package a policy's rules are read from when its
// configuration names none.
const DefaultPackage = "vouch"

// DefaultTimeout bounds one evaluation when the configuration sets no
// timeout.
const DefaultTimeout = time.Second

// MaxMessages bounds how many deny and warn messages one evaluation may
// return; more is an error (the policy could not decide).
const MaxMessages = 100

// MaxMessageBytes bounds one message.
const MaxMessageBytes = 4096

// refused lists the built-in functions a policy may not call: they reach
// the network or describe the process, and a policy decides on the input
// document alone.
var refused = []string{"http.send", "net.lookup_ip_addr", "opa.runtime"}

// Module is one Rego source file.
type Module struct {
	// Name names the module in errors: its file path, or the config field
	// of an inline policy.
	Name string
	// Source is the module's text.
	Source string
}

// Options configure Compile.
type Options struct {
	// Package is the Rego package holding deny and warn. Optional; default
	// DefaultPackage.
	Package string
	// Timeout bounds one evaluation. Optional; default DefaultTimeout.
	Timeout time.Duration
}

// Program is a compiled Rego policy. It is safe for concurrent use.
type Program struct {
	query   rego.PreparedEvalQuery
	warn    bool
	timeout time.Duration
	pkg     string
}

// Compile parses and compiles modules. Errors name the module and line
// ("policy.rego:3: rego_parse_error: ..."), as OPA writes them.
func Compile(ctx context.Context, modules []Module, opts Options) (*Program, error) {
	if len(modules) == 0 {
		return nil, errors.New("no Rego module")
	}
	pkg := opts.Package
	if pkg == "" {
		pkg = DefaultPackage
	}
	pkgRef, err := ast.ParseRef("data." + pkg)
	if err != nil {
		return nil, fmt.Errorf("package %q is not a Rego package name", pkg)
	}
	parsed := map[string]*ast.Module{}
	for _, m := range modules {
		mod, err := ast.ParseModuleWithOpts(m.Name, m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		if _, dup := parsed[m.Name]; dup {
			return nil, fmt.Errorf("%s: given twice", m.Name)
		}
		parsed[m.Name] = mod
	}
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(refused, b.Name)
	})
	compiler := ast.NewCompiler().WithCapabilities(caps).WithStrict(false)
	compiler.Compile(parsed)
	if compiler.Failed() {
		return nil, compiler.Errors
	}
	var deny, warn bool
	for _, mod := range parsed {
		if !mod.Package.Path.Equal(pkgRef) {
			continue
		}
		for _, r := range mod.Rules {
			switch r.Head.Name.String() {
			case "deny":
				deny = true
			case "warn":
				warn = true
			}
		}
	}
	if !deny {
		names := make([]string, 0, len(modules))
		for _, m := range modules {
			names = append(names, m.Name)
		}
		return nil, fmt.Errorf("%s: no rule deny in package %s (write `deny contains msg if { ... }`)", strings.Join(names, ", "), pkg)
	}
	q := "deny := data." + pkg + ".deny"
	if warn {
		q += "; warn := data." + pkg + ".warn"
	}
	query, err := rego.New(
		rego.Compiler(compiler),
		rego.Query(q),
		rego.Capabilities(caps),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Program{query: query, warn: warn, timeout: timeout, pkg: pkg}, nil
}

// Eval implements code.Program. It returns an error when the evaluation
// fails, exceeds its timeout or ctx's deadline, or answers something other
// than sets of messages.
func (p *Program) Eval(ctx context.Context, input map[string]any) (code.Answer, error) {
	value, err := toValue(input, map[unsafe.Pointer]ast.Value{})
	if err != nil {
		return code.Answer{}, fmt.Errorf("rego: input: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(value))
	if err != nil {
		if ctx.Err() != nil {
			return code.Answer{}, fmt.Errorf("rego: evaluation stopped after %s: %w", p.timeout, ctx.Err())
		}
		return code.Answer{}, fmt.Errorf("rego: %w", err)
	}
	if len(rs) != 1 {
		return code.Answer{}, fmt.Errorf("rego: data.%s.deny is undefined", p.pkg)
	}
	var a code.Answer
	if a.Deny, err = messages(rs[0].Bindings["deny"], "deny"); err != nil {
		return code.Answer{}, err
	}
	if p.warn {
		if a.Warn, err = messages(rs[0].Bindings["warn"], "warn"); err != nil {
			return code.Answer{}, err
		}
	}
	return a, nil
}

// messages reads a deny or warn set: strings, or objects with a string
// "msg".
func messages(v any, rule string) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("rego: %s is not a set of messages (a %T)", rule, v)
	}
	if len(list) > MaxMessages {
		return nil, fmt.Errorf("rego: %s has %d messages, more than %d", rule, len(list), MaxMessages)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		msg, ok := e.(string)
		if obj, isObj := e.(map[string]any); isObj {
			msg, ok = obj["msg"].(string)
		}
		if !ok {
			return nil, fmt.Errorf("rego: %s holds %v, which is neither a string nor an object with a string msg", rule, e)
		}
		if len(msg) > MaxMessageBytes {
			msg = msg[:MaxMessageBytes] + "…"
		}
		out = append(out, msg)
	}
	sort.Strings(out)
	return out, nil
}

// toValue converts a value of the input document (plain JSON values, see
// code.Input) to OPA's form. The document's flat list of nodes shares
// maps and slices with its tree; seen converts each of them once.
func toValue(v any, seen map[unsafe.Pointer]ast.Value) (ast.Value, error) {
	switch x := v.(type) {
	case nil:
		return ast.NullValue, nil
	case string:
		return ast.String(x), nil
	case bool:
		return ast.Boolean(x), nil
	case int64:
		return ast.Number(strconv.FormatInt(x, 10)), nil
	case float64:
		return ast.Number(strconv.FormatFloat(x, 'g', -1, 64)), nil
	case []any:
		key := unsafe.Pointer(unsafe.SliceData(x))
		if cached, ok := seen[key]; ok && len(x) > 0 {
			return cached, nil
		}
		terms := make([]*ast.Term, len(x))
		for i, e := range x {
			ev, err := toValue(e, seen)
			if err != nil {
				return nil, err
			}
			terms[i] = ast.NewTerm(ev)
		}
		arr := ast.NewArray(terms...)
		if len(x) > 0 {
			seen[key] = arr
		}
		return arr, nil
	case map[string]any:
		key := reflect.ValueOf(x).UnsafePointer()
		if cached, ok := seen[key]; ok {
			return cached, nil
		}
		pairs := make([][2]*ast.Term, 0, len(x))
		for k, e := range x {
			ev, err := toValue(e, seen)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, [2]*ast.Term{ast.StringTerm(k), ast.NewTerm(ev)})
		}
		obj := ast.NewObject(pairs...)
		seen[key] = obj
		return obj, nil
	}
	// Not a plain value: let OPA convert it.
	return ast.InterfaceToValue(v)
}

var _ code.Program = (*Program)(nil)
