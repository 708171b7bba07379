package vulnreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vouch-project/vouch/internal/untrusted"
)

// CycloneDXMediaType is the media type and artifact type of a CycloneDX
// JSON document attached as a referrer: an SBOM, or a VEX document when it
// holds vulnerabilities with an analysis.
const CycloneDXMediaType = "application/vnd.cyclonedx+json"

// cdxStates maps CycloneDX's impact analysis states (CycloneDX 1.4 and
// later, vulnerabilities[].analysis.state) to OpenVEX statuses.
var cdxStates = map[string]string{
	"not_affected":           VEXNotAffected,
	"false_positive":         VEXNotAffected,
	"resolved":               VEXFixed,
	"resolved_with_pedigree": VEXFixed,
	"exploitable":            VEXAffected,
	"in_triage":              VEXUnderInvestigation,
}

type cdxComponent struct {
	BOMRef string `json:"bom-ref"`
	PURL   string `json:"purl"`
}

type cdxDoc struct {
	BOMFormat   string `json:"bomFormat"`
	SpecVersion string `json:"specVersion"`
	Serial      string `json:"serialNumber"`
	Metadata    struct {
		Timestamp string        `json:"timestamp"`
		Component *cdxComponent `json:"component"`
	} `json:"metadata"`
	Components      []cdxComponent `json:"components"`
	Vulnerabilities []struct {
		ID         string `json:"id"`
		References []struct {
			ID string `json:"id"`
		} `json:"references"`
		Updated  string `json:"updated"`
		Analysis *struct {
			State         string `json:"state"`
			Justification string `json:"justification"`
			Detail        string `json:"detail"`
		} `json:"analysis"`
		Affects []struct {
			Ref string `json:"ref"`
		} `json:"affects"`
	} `json:"vulnerabilities"`
}

// ParseCycloneDXVEX reads the VEX statements of a CycloneDX JSON document
// (specVersion 1.4 or later): each vulnerability with an analysis becomes
// a statement about the products its affects[].ref name, resolved against
// the bom-refs of the document's metadata.component and components to
// their purls (a ref that names none is used as it is). A vulnerability
// without an analysis says nothing of its status and is left out. It
// returns no statements, and no error, for a CycloneDX SBOM without
// analysed vulnerabilities.
func ParseCycloneDXVEX(data []byte) (*VEXDocument, error) {
	if err := untrusted.CheckJSONDepth(data, MaxJSONDepth); err != nil {
		return nil, err
	}
	var d cdxDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	if d.BOMFormat != "CycloneDX" {
		return nil, fmt.Errorf("bomFormat %q is not CycloneDX", untrusted.Text(d.BOMFormat, 40))
	}
	switch d.SpecVersion {
	case "1.4", "1.5", "1.6", "1.7":
	default:
		return nil, fmt.Errorf("specVersion %q: vouch reads VEX from CycloneDX 1.4 to 1.7", untrusted.Text(d.SpecVersion, 40))
	}
	if len(d.Vulnerabilities) > MaxVEXStatements {
		return nil, fmt.Errorf("%d vulnerabilities, over the limit of %d", len(d.Vulnerabilities), MaxVEXStatements)
	}
	var docTime time.Time
	if d.Metadata.Timestamp != "" {
		t, err := time.Parse(time.RFC3339, d.Metadata.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("metadata.timestamp %q is not an RFC 3339 time", untrusted.Text(d.Metadata.Timestamp, 40))
		}
		docTime = t
	}
	purls := map[string]string{}
	comps := d.Components
	if d.Metadata.Component != nil {
		comps = append([]cdxComponent{*d.Metadata.Component}, comps...)
	}
	for _, c := range comps {
		if c.BOMRef != "" && c.PURL != "" {
			purls[c.BOMRef] = c.PURL
		}
	}
	out := &VEXDocument{ID: d.Serial}
	for i, v := range d.Vulnerabilities {
		if v.Analysis == nil || v.Analysis.State == "" {
			continue
		}
		where := fmt.Sprintf("vulnerabilities[%d]", i)
		status, ok := cdxStates[v.Analysis.State]
		if !ok {
			return nil, fmt.Errorf("%s.analysis.state %q is not a CycloneDX impact analysis state", where, untrusted.Text(v.Analysis.State, 40))
		}
		st := VEXStatement{Vulnerability: strings.TrimSpace(v.ID), Status: status, Justification: v.Analysis.Justification, Impact: v.Analysis.Detail, Time: docTime}
		if st.Vulnerability == "" {
			return nil, errors.New(where + ": no id")
		}
		for _, r := range v.References {
			if r.ID != "" {
				st.Aliases = append(st.Aliases, r.ID)
			}
		}
		if v.Updated != "" {
			t, err := time.Parse(time.RFC3339, v.Updated)
			if err != nil {
				return nil, fmt.Errorf("%s.updated %q is not an RFC 3339 time", where, untrusted.Text(v.Updated, 40))
			}
			st.Time = t
		}
		if len(v.Affects) == 0 {
			return nil, errors.New(where + ": no affects")
		}
		for _, a := range v.Affects {
			id := a.Ref
			if _, ref, ok := strings.Cut(a.Ref, "#"); ok && strings.HasPrefix(a.Ref, "urn:cdx:") {
				id = ref // a BOM-Link to this document's component
			}
			if p, ok := purls[id]; ok {
				id = p
			}
			st.Products = append(st.Products, VEXProduct{IDs: []string{id}})
		}
		out.Statements = append(out.Statements, st)
	}
	return out, nil
}
