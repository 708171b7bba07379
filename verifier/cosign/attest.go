package cosign

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// attestationPolicy is Attestations, compiled.
type attestationPolicy struct {
	types      map[string]bool
	common     []fieldCheck
	perType    map[string][]fieldCheck
	provenance *provenancePolicy
}

type fieldCheck struct {
	path, want string
	re         *regexp.Regexp
}

func newAttestationPolicy(a *Attestations) (*attestationPolicy, error) {
	p := &attestationPolicy{types: map[string]bool{}, perType: map[string][]fieldCheck{}}
	for _, t := range a.PredicateTypes {
		uri, err := PredicateType(t)
		if err != nil {
			return nil, err
		}
		p.types[uri] = true
	}
	var err error
	if a.Provenance != nil {
		if p.provenance, err = newProvenancePolicy(a.Provenance); err != nil {
			return nil, err
		}
		p.types[PredicateSLSAv02], p.types[PredicateSLSAv1] = true, true
	}
	if p.common, err = compileFields(a.Fields, a.FieldsRegExp); err != nil {
		return nil, err
	}
	for _, pr := range a.Predicates {
		uri, err := PredicateType(pr.Type)
		if err != nil {
			return nil, err
		}
		p.types[uri] = true
		if p.perType[uri], err = compileFields(pr.Fields, pr.FieldsRegExp); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func compileFields(exact, re map[string]string) ([]fieldCheck, error) {
	var out []fieldCheck
	for _, k := range slices.Sorted(maps.Keys(exact)) {
		out = append(out, fieldCheck{path: k, want: exact[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(re)) {
		r, err := regexp.Compile(re[k])
		if err != nil {
			return nil, err
		}
		out = append(out, fieldCheck{path: k, re: r})
	}
	return out, nil
}

func (p *attestationPolicy) accepts(t string) bool { return len(p.types) == 0 || p.types[t] }

func (p *attestationPolicy) acceptedText() string {
	return strings.Join(slices.Sorted(maps.Keys(p.types)), ", ")
}

// check returns why the statement's predicate fails the field checks or,
// for an SLSA provenance, the provenance checks, or "".
func (p *attestationPolicy) check(s *statement) string {
	if p.provenance != nil && (s.PredicateType == PredicateSLSAv02 || s.PredicateType == PredicateSLSAv1) {
		f, err := readProvenance(s.PredicateType, s.Predicate)
		if err != nil {
			return "unreadable provenance predicate: " + err.Error()
		}
		if why := p.provenance.check(f); why != "" {
			return why
		}
	}
	for _, fc := range append(append([]fieldCheck(nil), p.common...), p.perType[s.PredicateType]...) {
		want := fc.want
		if fc.re != nil {
			want = "a match for " + fc.re.String()
		}
		got, err := lookup(s.Predicate, fc.path)
		if err != nil {
			return fmt.Sprintf("predicate field %s is %v, want %s", fc.path, err, want)
		}
		if (fc.re == nil && got != fc.want) || (fc.re != nil && !fc.re.MatchString(got)) {
			return fmt.Sprintf("predicate field %s is %s, want %s", fc.path, got, want)
		}
	}
	return ""
}
