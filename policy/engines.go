//go:build policycode

package policy

import (
	"context"
	"fmt"

	"github.com/vouch-project/vouch/policy/code"
	"github.com/vouch-project/vouch/policy/code/cel"
	"github.com/vouch-project/vouch/policy/code/rego"
)

// Engines reports whether this vouch can compile Rego and CEL policies:
// it was built with -tags policycode.
const Engines = true

func compileRego(ctx context.Context, r *Rego, path string) (code.Program, error) {
	names, sources, err := regoModules(r, path)
	if err != nil {
		return nil, err
	}
	modules := make([]rego.Module, len(names))
	for i := range names {
		modules[i] = rego.Module{Name: names[i], Source: sources[i]}
	}
	p, err := rego.Compile(ctx, modules, rego.Options{Package: r.Package, Timeout: timeoutOf(r.Timeout)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func compileCEL(c *CEL, path string) (code.Program, error) {
	vs := make([]cel.Validation, len(c.Validations))
	for i, v := range c.Validations {
		vs[i] = cel.Validation{
			Name:              fmt.Sprintf("%s.validations[%d]", path, i),
			Expression:        v.Expression,
			Message:           v.Message,
			MessageExpression: v.MessageExpression,
			Action:            v.Action,
		}
	}
	p, err := cel.Compile(vs, cel.Options{Timeout: timeoutOf(c.Timeout), CostLimit: uint64(c.CostLimit)})
	if err != nil {
		return nil, err
	}
	return p, nil
}
