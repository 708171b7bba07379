package policy

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vouch-project/vouch/internal/duration"
	"github.com/vouch-project/vouch/internal/untrusted"
	"github.com/vouch-project/vouch/policy/code"
)

// Bounds on a Rego policy's files.
const (
	// MaxRegoBytes bounds the Rego source of one scope, all files together.
	MaxRegoBytes = 4 << 20
	// MaxRegoFiles bounds how many .rego files one scope's folders hold.
	MaxRegoFiles = 256
)

// Rego is a policy written in Rego (OPA v1) that decides a scope's
// subjects over the input document (docs/policy-rego.md). Set Files or
// Inline.
//
// +kubebuilder:object:generate=true
type Rego struct {
	// Files are .rego files, or folders whose .rego files (not
	// *_test.rego, searched recursively) are read, relative to the config
	// file's folder. Optional; config file only.
	Files []string `json:"files,omitempty"`
	// Inline is the text of one Rego module. Optional.
	Inline string `json:"inline,omitempty"`
	// Package is the Rego package holding the rules deny and warn.
	// Optional; default "vouch".
	Package string `json:"package,omitempty"`
	// Timeout bounds one evaluation; past it the subject is undecided.
	// Optional; default 1s.
	Timeout *duration.Duration `json:"timeout,omitempty"`
}

// CEL is a policy written as CEL expressions that decides a scope's
// subjects over the input document (docs/policy-cel.md).
//
// +kubebuilder:object:generate=true
type CEL struct {
	// Validations are expressions that must each be true. Required.
	Validations []CELValidation `json:"validations"`
	// Timeout bounds one evaluation of every validation; past it the
	// subject is undecided. Optional; default 1s.
	Timeout *duration.Duration `json:"timeout,omitempty"`
	// CostLimit bounds each expression's runtime cost in cel-go's units.
	// Optional; default 1000000.
	CostLimit int64 `json:"costLimit,omitempty"`
}

// CELValidation is one CEL rule.
//
// +kubebuilder:object:generate=true
type CELValidation struct {
	// Expression is a CEL expression over input that yields a bool.
	// Required.
	Expression string `json:"expression"`
	// Message is the reason given when Expression is false. Optional.
	Message string `json:"message,omitempty"`
	// MessageExpression is a CEL expression yielding the reason instead.
	// Optional.
	MessageExpression string `json:"messageExpression,omitempty"`
	// Action is deny (default): a false expression denies; or warn: it
	// allows with a warning.
	// +kubebuilder:validation:Enum=deny;warn
	Action string `json:"action,omitempty"`
}

// Programs are the compiled Rego and CEL policies of a Config's scopes,
// by scope name. Compile makes them once per configuration; New takes
// them (WithPrograms) so that the policy of each namespace shares them.
type Programs map[string]code.Program

// Compile reads and compiles the Rego and CEL policies of c's scopes.
// Errors name the scope's field, and the file and line of the source.
func Compile(ctx context.Context, c Config) (Programs, error) {
	progs := Programs{}
	for i, s := range c.Scopes {
		path := fmt.Sprintf("policy.scopes[%d]", i)
		var (
			p   code.Program
			err error
		)
		switch {
		case s.Rego != nil:
			p, err = compileRego(ctx, s.Rego, path+".rego")
		case s.CEL != nil:
			p, err = compileCEL(s.CEL, path+".cel")
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		progs[s.Name] = p
	}
	return progs, nil
}

// regoModules reads r's sources: each file, each folder's .rego files,
// and the inline module (named by path).
func regoModules(r *Rego, path string) (names, sources []string, err error) {
	total := 0
	add := func(name string, data []byte) error {
		total += len(data)
		if total > MaxRegoBytes {
			return fmt.Errorf("%s: the Rego source is larger than %d bytes", path, MaxRegoBytes)
		}
		if len(names) >= MaxRegoFiles {
			return fmt.Errorf("%s: more than %d Rego files", path, MaxRegoFiles)
		}
		names, sources = append(names, name), append(sources, string(data))
		return nil
	}
	read := func(file string) error {
		data, err := untrusted.ReadFile(file, MaxRegoBytes)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return add(file, data)
	}
	for _, f := range r.Files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.files: %w", path, err)
		}
		if !fi.IsDir() {
			if err := read(f); err != nil {
				return nil, nil, err
			}
			continue
		}
		var files []string
		err = filepath.WalkDir(f, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".rego") && !strings.HasSuffix(p, "_test.rego") {
				files = append(files, p)
				if len(files) > MaxRegoFiles {
					return fmt.Errorf("more than %d Rego files", MaxRegoFiles)
				}
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("%s.files: %s: %w", path, f, err)
		}
		if len(files) == 0 {
			return nil, nil, fmt.Errorf("%s.files: %s holds no .rego file", path, f)
		}
		sort.Strings(files)
		for _, file := range files {
			if err := read(file); err != nil {
				return nil, nil, err
			}
		}
	}
	if r.Inline != "" {
		if err := add(path+".inline", []byte(r.Inline)); err != nil {
			return nil, nil, err
		}
	}
	return names, sources, nil
}

// validCode checks a scope's Rego or CEL section without reading a file.
func validCode(s Scope, path string) error {
	if s.Rego != nil && s.CEL != nil {
		return fmt.Errorf("%s: set rego or cel, not both", path)
	}
	if r := s.Rego; r != nil {
		if len(r.Files) == 0 && strings.TrimSpace(r.Inline) == "" {
			return fmt.Errorf("%s.rego: needs files or inline", path)
		}
		for j, f := range r.Files {
			if f == "" {
				return fmt.Errorf("%s.rego.files[%d]: empty", path, j)
			}
		}
	}
	if c := s.CEL; c != nil {
		if len(c.Validations) == 0 {
			return fmt.Errorf("%s.cel.validations: at least one validation is required", path)
		}
		if c.CostLimit < 0 {
			return fmt.Errorf("%s.cel.costLimit: cannot be negative", path)
		}
		for j, v := range c.Validations {
			p := fmt.Sprintf("%s.cel.validations[%d]", path, j)
			if strings.TrimSpace(v.Expression) == "" {
				return fmt.Errorf("%s.expression: required", p)
			}
			switch v.Action {
			case "", "deny", "warn":
			default:
				return fmt.Errorf("%s.action: %q is not deny or warn", p, v.Action)
			}
			if v.Message != "" && v.MessageExpression != "" {
				return fmt.Errorf("%s: set message or messageExpression, not both", p)
			}
		}
	}
	return nil
}

func timeoutOf(d *duration.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}
