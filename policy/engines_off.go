//go:build !policycode

package policy

import (
	"context"
	"fmt"

	"github.com/vouch-project/vouch/policy/code"
)

// Engines reports whether this vouch can compile Rego and CEL policies:
// it was built with -tags policycode. This one was not: OPA and cel-go
// would cost every CLI command's start-up (docs/policy-rego.md).
const Engines = false

// errNoEngines says how to get a vouch that runs policies as code.
const errNoEngines = "this vouch was built without the Rego and CEL engines; build it with -tags policycode (the container image is)"

func compileRego(_ context.Context, _ *Rego, path string) (code.Program, error) {
	return nil, fmt.Errorf("%s: %s", path, errNoEngines)
}

func compileCEL(_ *CEL, path string) (code.Program, error) {
	return nil, fmt.Errorf("%s: %s", path, errNoEngines)
}
