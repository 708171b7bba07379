package sbom

// This file parses SPDX license expressions; licensepolicy.go decides
// whether a parsed expression is denied.

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/github/go-spdx/v2/spdxexp/spdxlicenses"
)

// Values that SPDX uses in place of a license expression.
const (
	// NoAssertion says the SBOM's author makes no claim about the license.
	NoAssertion = "NOASSERTION"
	// NoLicense says the package has no license at all.
	NoLicense = "NONE"
)

// maxExpressionDepth bounds the nesting of parentheses in one license
// expression; the parser recurses once per level.
const maxExpressionDepth = 64

// License is a parsed SPDX license expression, as defined in SPDX 2.3
// Annex D (https://spdx.github.io/spdx-spec/v2.3/SPDX-license-expressions/):
// license identifiers, "+" (this version or later), LicenseRef- and
// DocumentRef-…:LicenseRef- references, "WITH" exceptions, "AND", "OR" and
// parentheses. WITH binds tighter than AND, and AND tighter than OR.
type License struct {
	root licenseNode
}

// licenseNode is a term (licenseTerm) or a list of operands joined by one
// operator (licenseOp).
type licenseNode interface {
	write(b *strings.Builder, parent opKind)
}

type opKind int

const (
	opNone opKind = iota
	opOr
	opAnd
)

func (k opKind) String() string {
	if k == opAnd {
		return "AND"
	}
	return "OR"
}

// licenseOp is operands joined by AND or OR.
type licenseOp struct {
	op   opKind
	args []licenseNode
}

// licenseTerm is one license, with its exception.
type licenseTerm struct {
	// id is the identifier as written, without "+".
	id string
	// plus is a trailing "+": this version or any later one.
	plus bool
	// exception is the identifier after WITH, or "".
	exception string
}

// ParseLicense parses an SPDX license expression such as
// "MIT OR (GPL-2.0-only WITH Classpath-exception-2.0 AND BSD-3-Clause)".
//
// It checks the grammar only: any word of letters, digits, "." and "-" is
// a license, so unknown licenses parse; Unknown lists those that are not
// on the SPDX license list.
// Operators are recognised in any case ("and", "Or"), as some tools write
// them. NONE and NOASSERTION are not expressions; callers test for them
// first. An error says what is malformed.
func ParseLicense(s string) (*License, error) {
	toks := lexLicense(s)
	if len(toks) == 0 {
		return nil, errors.New("empty license expression")
	}
	p := &licenseParser{toks: toks}
	root, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q after a complete expression", p.toks[p.pos])
	}
	return &License{root: root}, nil
}

// String writes the expression back in canonical form: operators in upper
// case, single spaces, and parentheses only where precedence needs them.
func (l *License) String() string {
	if l == nil || l.root == nil {
		return ""
	}
	var b strings.Builder
	l.root.write(&b, opNone)
	return b.String()
}

// Licenses lists the license terms the expression names, in order, each as
// written with its "+" and WITH exception.
func (l *License) Licenses() []string {
	var out []string
	var walk func(n licenseNode)
	walk = func(n licenseNode) {
		switch n := n.(type) {
		case *licenseTerm:
			out = append(out, n.String())
		case *licenseOp:
			for _, a := range n.args {
				walk(a)
			}
		}
	}
	if l != nil {
		walk(l.root)
	}
	return out
}

// LicenseListVersion is the version of the SPDX license list that vouch
// knows (https://spdx.org/licenses/), as go-spdx carries it.
func LicenseListVersion() string { return spdxlicenses.LicenseListVersion() }

// Unknown lists the license identifiers and WITH exceptions of l that are
// on neither the SPDX license list nor its exception list, current or
// deprecated, as written ("GPL-3", "Foo-exception"); nil when all are
// known. LicenseRef-, DocumentRef- and AdditionRef- references are
// user-defined and never unknown.
func (l *License) Unknown() []string {
	var out []string
	var walk func(n licenseNode)
	walk = func(n licenseNode) {
		switch n := n.(type) {
		case *licenseTerm:
			out = append(out, n.unknown()...)
		case *licenseOp:
			for _, a := range n.args {
				walk(a)
			}
		}
	}
	if l != nil {
		walk(l.root)
	}
	return out
}

// unknown returns the parts of t that are not on the SPDX lists.
func (t *licenseTerm) unknown() []string {
	var out []string
	if !isLicenseRef(t.id) && !knownLicenseID(t.id) {
		out = append(out, t.id)
	}
	if t.exception != "" && !strings.Contains(strings.ToLower(t.exception), "additionref-") {
		if ok, _ := spdxlicenses.IsException(t.exception); !ok {
			out = append(out, t.exception)
		}
	}
	return out
}

// knownLicenseID reports whether id (without "+") is on the SPDX license
// list, current or deprecated, ignoring case.
func knownLicenseID(id string) bool {
	if ok, _ := spdxlicenses.IsActiveLicense(id); ok {
		return true
	}
	ok, _ := spdxlicenses.IsDeprecatedLicense(id)
	return ok
}

func (t *licenseTerm) String() string {
	s := t.id
	if t.plus {
		s += "+"
	}
	if t.exception != "" {
		s += " WITH " + t.exception
	}
	return s
}

func (t *licenseTerm) write(b *strings.Builder, _ opKind) { b.WriteString(t.String()) }

func (o *licenseOp) write(b *strings.Builder, parent opKind) {
	// OR under AND needs parentheses; AND under OR does not.
	paren := parent == opAnd && o.op == opOr
	if paren {
		b.WriteByte('(')
	}
	for i, a := range o.args {
		if i > 0 {
			b.WriteString(" " + o.op.String() + " ")
		}
		a.write(b, o.op)
	}
	if paren {
		b.WriteByte(')')
	}
}

// lexLicense splits s into parentheses and words.
func lexLicense(s string) []string {
	var toks []string
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

type licenseParser struct {
	toks []string
	pos  int
}

func (p *licenseParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *licenseParser) peekOp(op string) bool { return strings.EqualFold(p.peek(), op) }

// or parses operands joined by OR.
func (p *licenseParser) or(depth int) (licenseNode, error) {
	return p.joined(depth, opOr, "OR", p.and)
}

// and parses operands joined by AND.
func (p *licenseParser) and(depth int) (licenseNode, error) {
	return p.joined(depth, opAnd, "AND", p.with)
}

func (p *licenseParser) joined(depth int, op opKind, word string, next func(int) (licenseNode, error)) (licenseNode, error) {
	first, err := next(depth)
	if err != nil {
		return nil, err
	}
	args := []licenseNode{first}
	for p.peekOp(word) {
		p.pos++
		n, err := next(depth)
		if err != nil {
			return nil, err
		}
		args = append(args, n)
	}
	if len(args) == 1 {
		return first, nil
	}
	// Flatten "(A OR B) OR C" into one list.
	var flat []licenseNode
	for _, a := range args {
		if o, ok := a.(*licenseOp); ok && o.op == op {
			flat = append(flat, o.args...)
		} else {
			flat = append(flat, a)
		}
	}
	return &licenseOp{op: op, args: flat}, nil
}

// with parses a primary, then an optional "WITH exception".
func (p *licenseParser) with(depth int) (licenseNode, error) {
	n, err := p.primary(depth)
	if err != nil {
		return nil, err
	}
	if !p.peekOp("WITH") {
		return n, nil
	}
	p.pos++
	t, ok := n.(*licenseTerm)
	if !ok || t.exception != "" {
		return nil, errors.New("WITH must follow a single license identifier")
	}
	if isLicenseRef(t.id) {
		return nil, fmt.Errorf("WITH cannot follow the license reference %q", t.id)
	}
	exc := p.peek()
	if exc == "" || exc == "(" || exc == ")" || isOperator(exc) {
		return nil, errors.New("WITH must be followed by an exception identifier")
	}
	if !validException(exc) {
		return nil, fmt.Errorf("%q is not a valid exception identifier", exc)
	}
	p.pos++
	t.exception = exc
	return t, nil
}

// primary parses "( expression )" or one license.
func (p *licenseParser) primary(depth int) (licenseNode, error) {
	tok := p.peek()
	switch {
	case tok == "":
		return nil, errors.New("expression ends where a license was expected")
	case tok == "(":
		if depth >= maxExpressionDepth {
			return nil, fmt.Errorf("parentheses nested deeper than %d levels", maxExpressionDepth)
		}
		p.pos++
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			if p.peek() == "" {
				return nil, errors.New("missing )")
			}
			return nil, fmt.Errorf("unexpected %q where ) was expected", p.peek())
		}
		p.pos++
		return n, nil
	case tok == ")":
		return nil, errors.New("unexpected )")
	case isOperator(tok):
		return nil, fmt.Errorf("unexpected operator %s where a license was expected", strings.ToUpper(tok))
	}
	p.pos++
	return parseTerm(tok)
}

func isOperator(tok string) bool {
	return strings.EqualFold(tok, "AND") || strings.EqualFold(tok, "OR") || strings.EqualFold(tok, "WITH")
}

// Compiled on first use, not when vouch starts (every command pays for
// package-level work at start-up).
var (
	// idstring from SPDX 2.3 Annex D: letters, digits, "-" and ".".
	idstring     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9.\-]+$`) })
	licenseRefRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?i:DocumentRef-[A-Za-z0-9.\-]+:)?(?i:LicenseRef-)[A-Za-z0-9.\-]+$`)
	})
	// AdditionRef- is SPDX 3's user-defined exception; accept it after WITH.
	exceptionRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?i:(DocumentRef-[A-Za-z0-9.\-]+:)?AdditionRef-)?[A-Za-z0-9.\-]+$`)
	})
)

func isLicenseRef(id string) bool { return licenseRefRe().MatchString(id) }

func validException(s string) bool { return exceptionRe().MatchString(s) }

// parseTerm parses one license word: an identifier with an optional "+",
// or a license reference.
func parseTerm(tok string) (*licenseTerm, error) {
	if strings.EqualFold(tok, NoAssertion) || strings.EqualFold(tok, NoLicense) {
		return nil, fmt.Errorf("%s may only stand alone, not inside an expression", strings.ToUpper(tok))
	}
	if isLicenseRef(tok) {
		return &licenseTerm{id: tok}, nil
	}
	if strings.Contains(tok, ":") || strings.HasPrefix(strings.ToLower(tok), "licenseref-") {
		if strings.HasSuffix(tok, "+") {
			return nil, fmt.Errorf("%q: a license reference cannot take \"+\"", tok)
		}
		return nil, fmt.Errorf("%q is not a valid license reference", tok)
	}
	id, plus := strings.CutSuffix(tok, "+")
	if !idstring().MatchString(id) {
		return nil, fmt.Errorf("%q is not a license identifier (letters, digits, \".\" and \"-\", optionally ending in \"+\")", tok)
	}
	return &licenseTerm{id: id, plus: plus}, nil
}
