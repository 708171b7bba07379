// Package cel compiles and evaluates vouch policies written as CEL
// expressions (cel-go) over the input document of package code, the same
// document Rego policies read. A policy is a list of validations, each an
// expression that must be true for the subject to pass, as in Kubernetes'
// ValidatingAdmissionPolicy:
//
//	input.referrers.exists(r, r.artifactType == "application/spdx+json" && r.verified)
//
// docs/policy-cel.md documents the validations, the answer and the limits.
package cel

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"

	"github.com/vouch-project/vouch/policy/code"
)

// DefaultTimeout bounds one evaluation of all of a policy's validations
// when the configuration sets no timeout.
const DefaultTimeout = time.Second

// DefaultCostLimit bounds the runtime cost of one expression (cel-go's
// cost units: about one per operation, and per element of a list or
// string an operation walks) when the configuration sets none. It is
// Kubernetes' per-expression limit for ValidatingAdmissionPolicy.
const DefaultCostLimit = 1_000_000

// Actions of a Validation.
const (
	// ActionDeny: a validation that is false denies the subject.
	ActionDeny = "deny"
	// ActionWarn: a validation that is false allows it with a warning.
	ActionWarn = "warn"
)

// Validation is one rule: an expression that must be true.
type Validation struct {
	// Name names the validation in errors: its config field path.
	Name string
	// Expression is a CEL expression over input that yields a bool.
	Expression string
	// Message is the reason given when Expression is false. Optional;
	// default "failed: EXPRESSION".
	Message string
	// MessageExpression is a CEL expression over input yielding the
	// reason, instead of Message. Optional.
	MessageExpression string
	// Action is ActionDeny (default) or ActionWarn.
	Action string
}

// Options configure Compile.
type Options struct {
	// Timeout bounds one evaluation of every validation. Optional; default
	// DefaultTimeout.
	Timeout time.Duration
	// CostLimit bounds each expression's runtime cost. Optional; default
	// DefaultCostLimit.
	CostLimit uint64
}

// Program is a compiled CEL policy. It is safe for concurrent use.
type Program struct {
	rules   []rule
	timeout time.Duration
}

type rule struct {
	v       Validation
	check   cel.Program
	message cel.Program // nil: v.Message
}

// Compile type-checks every validation. Errors name the validation and
// the line and column in its expression.
func Compile(validations []Validation, opts Options) (*Program, error) {
	if len(validations) == 0 {
		return nil, errors.New("no CEL validation")
	}
	env, err := cel.NewEnv(
		cel.Variable("input", cel.MapType(cel.StringType, cel.DynType)),
		ext.Strings(),
		ext.Sets(),
		ext.Lists(),
	)
	if err != nil {
		return nil, fmt.Errorf("cel: %w", err)
	}
	limit := opts.CostLimit
	if limit == 0 {
		limit = DefaultCostLimit
	}
	prog := func(name, expr string, want *cel.Type) (cel.Program, error) {
		ast, iss := env.CompileSource(common.NewStringSource(expr, name))
		if iss.Err() != nil {
			return nil, iss.Err()
		}
		if t := ast.OutputType(); !t.IsExactType(want) && !t.IsExactType(cel.DynType) {
			return nil, fmt.Errorf("%s: yields %s, not %s", name, t, want)
		}
		return env.Program(ast, cel.CostLimit(limit), cel.InterruptCheckFrequency(1))
	}
	p := &Program{timeout: opts.Timeout}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	for _, v := range validations {
		switch v.Action {
		case "":
			v.Action = ActionDeny
		case ActionDeny, ActionWarn:
		default:
			return nil, fmt.Errorf("%s.action: %q is not deny or warn", v.Name, v.Action)
		}
		if v.Message != "" && v.MessageExpression != "" {
			return nil, fmt.Errorf("%s: set message or messageExpression, not both", v.Name)
		}
		r := rule{v: v}
		if r.check, err = prog(v.Name+".expression", v.Expression, cel.BoolType); err != nil {
			return nil, err
		}
		if v.MessageExpression != "" {
			if r.message, err = prog(v.Name+".messageExpression", v.MessageExpression, cel.StringType); err != nil {
				return nil, err
			}
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// Eval implements code.Program: each validation that is false adds its
// message to the answer's Deny or Warn. An expression that errs, exceeds
// its cost limit or the timeout, or yields no bool is an error.
func (p *Program) Eval(ctx context.Context, input map[string]any) (code.Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	vars := map[string]any{"input": input}
	var a code.Answer
	for _, r := range p.rules {
		out, _, err := r.check.ContextEval(ctx, vars)
		if err != nil {
			return code.Answer{}, p.failed(ctx, r.v.Name+".expression", err)
		}
		ok, isBool := out.Value().(bool)
		if !isBool || out.Type() != types.BoolType {
			return code.Answer{}, fmt.Errorf("cel: %s.expression yields %v, not a bool", r.v.Name, out.Type())
		}
		if ok {
			continue
		}
		msg := r.v.Message
		switch {
		case r.message != nil:
			mv, _, err := r.message.ContextEval(ctx, vars)
			if err != nil {
				return code.Answer{}, p.failed(ctx, r.v.Name+".messageExpression", err)
			}
			s, isString := mv.Value().(string)
			if !isString {
				return code.Answer{}, fmt.Errorf("cel: %s.messageExpression yields %v, not a string", r.v.Name, mv.Type())
			}
			msg = s
		case msg == "":
			msg = "failed: " + r.v.Expression
		}
		if r.v.Action == ActionWarn {
			a.Warn = append(a.Warn, msg)
		} else {
			a.Deny = append(a.Deny, msg)
		}
	}
	sort.Strings(a.Deny)
	sort.Strings(a.Warn)
	return a, nil
}

func (p *Program) failed(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("cel: %s: evaluation stopped after %s: %w", name, p.timeout, ctx.Err())
	}
	return fmt.Errorf("cel: %s: %w", name, err)
}

var _ code.Program = (*Program)(nil)
