package cosign

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// provenanceFacts is what an SLSA provenance says about its build, in
// either version's fields.
type provenanceFacts struct {
	builderID, buildType, repository, ref string
}

// readProvenance reads the facts of a v0.2 or v1 provenance predicate.
func readProvenance(predicateType string, predicate json.RawMessage) (provenanceFacts, error) {
	var f provenanceFacts
	var uri string
	switch predicateType {
	case PredicateSLSAv1:
		var p struct {
			BuildDefinition struct {
				BuildType          string `json:"buildType"`
				ExternalParameters struct {
					Workflow struct {
						Repository string `json:"repository"`
						Ref        string `json:"ref"`
					} `json:"workflow"`
				} `json:"externalParameters"`
				ResolvedDependencies []struct {
					URI string `json:"uri"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
			} `json:"runDetails"`
		}
		if err := json.Unmarshal(predicate, &p); err != nil {
			return f, err
		}
		bd := p.BuildDefinition
		f.builderID, f.buildType = p.RunDetails.Builder.ID, bd.BuildType
		f.repository, f.ref = bd.ExternalParameters.Workflow.Repository, bd.ExternalParameters.Workflow.Ref
		if f.repository == "" && len(bd.ResolvedDependencies) > 0 {
			uri = bd.ResolvedDependencies[0].URI
		}
	case PredicateSLSAv02:
		var p struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			BuildType  string `json:"buildType"`
			Invocation struct {
				ConfigSource struct {
					URI string `json:"uri"`
				} `json:"configSource"`
			} `json:"invocation"`
			Materials []struct {
				URI string `json:"uri"`
			} `json:"materials"`
		}
		if err := json.Unmarshal(predicate, &p); err != nil {
			return f, err
		}
		f.builderID, f.buildType = p.Builder.ID, p.BuildType
		uri = p.Invocation.ConfigSource.URI
		if uri == "" && len(p.Materials) > 0 {
			uri = p.Materials[0].URI
		}
	}
	if uri != "" {
		f.repository, f.ref, _ = strings.Cut(uri, "@")
	}
	f.repository = normalRepository(f.repository)
	return f, nil
}

// normalRepository drops a "git+" prefix and a ".git" suffix.
func normalRepository(r string) string {
	return strings.TrimSuffix(strings.TrimPrefix(r, "git+"), ".git")
}

// provenancePolicy is Provenance, compiled.
type provenancePolicy struct {
	builders, types, refs, hardened []string
	repository                      string
	builderRE, repositoryRE, refRE  *regexp.Regexp
}

func newProvenancePolicy(p *Provenance) (*provenancePolicy, error) {
	pp := &provenancePolicy{builders: p.BuilderIDs, types: p.BuildTypes, refs: p.SourceRefs, hardened: p.HardenedBuilders, repository: normalRepository(p.SourceRepository)}
	var err error
	compile := func(s string) *regexp.Regexp {
		if s == "" || err != nil {
			return nil
		}
		var re *regexp.Regexp
		re, err = regexp.Compile(s)
		return re
	}
	pp.builderRE, pp.repositoryRE, pp.refRE = compile(p.BuilderIDRegExp), compile(p.SourceRepositoryRegExp), compile(p.SourceRefRegExp)
	return pp, err
}

// check returns why the provenance's facts fail the policy, or "".
func (p *provenancePolicy) check(f provenanceFacts) string {
	for _, c := range []struct {
		what, got string
		exact     []string
		re        *regexp.Regexp
	}{
		{"builder id", f.builderID, p.builders, p.builderRE},
		{"build type", f.buildType, p.types, nil},
		{"source repository", f.repository, nonEmpty(p.repository), p.repositoryRE},
		{"source ref", f.ref, p.refs, p.refRE},
	} {
		if len(c.exact) == 0 && c.re == nil {
			continue
		}
		if slices.Contains(c.exact, c.got) || (c.re != nil && c.got != "" && c.re.MatchString(c.got)) {
			continue
		}
		var want []string
		if len(c.exact) > 0 {
			want = append(want, strings.Join(c.exact, " or "))
		}
		if c.re != nil {
			want = append(want, "a match for "+c.re.String())
		}
		got := c.got
		if got == "" {
			got = "missing"
		}
		return fmt.Sprintf("provenance %s is %s, want %s", c.what, got, strings.Join(want, " or "))
	}
	return ""
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// isSLSA reports whether predicateType is an SLSA provenance's.
func isSLSA(predicateType string) bool {
	return predicateType == PredicateSLSAv02 || predicateType == PredicateSLSAv1
}

// hardenedBuilder reports whether the provenance in s names a builder on
// the hardened list.
func (p *attestationPolicy) hardenedBuilder(s *statement) bool {
	if p.provenance == nil || len(p.provenance.hardened) == 0 {
		return false
	}
	f, err := readProvenance(s.PredicateType, s.Predicate)
	return err == nil && slices.Contains(p.provenance.hardened, f.builderID)
}
