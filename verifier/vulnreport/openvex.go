package vulnreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vouch-project/vouch/internal/untrusted"
)

// VEXMediaType is the media type and artifact type of an OpenVEX document
// attached as a referrer (`oras attach --artifact-type
// application/vnd.openvex+json`).
const VEXMediaType = "application/vnd.openvex+json"

// OpenVEX statuses (OpenVEX 0.2.0, "Status Labels"). Only NotAffected and
// Fixed take a finding out of the policy's reach.
const (
	VEXNotAffected        = "not_affected"
	VEXAffected           = "affected"
	VEXFixed              = "fixed"
	VEXUnderInvestigation = "under_investigation"
)

// MaxVEXStatements bounds the statements read from one OpenVEX document.
const MaxVEXStatements = 10000

// VEXDocument is the part of an OpenVEX 0.2.0 document that vouch reads
// (https://github.com/openvex/spec/blob/main/OPENVEX-SPEC.md).
type VEXDocument struct {
	// ID is the document's @id.
	ID string
	// Author is the document's author.
	Author string
	// Statements are the document's statements, each with its time (its
	// own timestamp, else the document's).
	Statements []VEXStatement
}

// VEXStatement is one OpenVEX statement.
type VEXStatement struct {
	// Vulnerability is the vulnerability's name ("CVE-2021-44228") and
	// Aliases its other ids.
	Vulnerability string
	Aliases       []string
	// Products are the products' @id and identifiers (purls, CPEs).
	Products []VEXProduct
	// Status is one of the VEX* status constants.
	Status string
	// Justification is the not_affected justification label, and
	// Statement the impact or status notes, whichever is given.
	Justification, Impact string
	// Time is when the statement was made.
	Time time.Time
}

// VEXProduct is a statement's product: the image, named by a purl
// ("pkg:oci/app@sha256%3A...") or a repository reference, with the
// subcomponents (packages) it is about, if any.
type VEXProduct struct {
	// IDs are the product's @id and identifiers.
	IDs []string
	// Subcomponents are the @id and identifiers of its subcomponents.
	Subcomponents []string
}

type vexDoc struct {
	Context    string          `json:"@context"`
	ID         string          `json:"@id"`
	Author     string          `json:"author"`
	Timestamp  string          `json:"timestamp"`
	Version    json.RawMessage `json:"version"`
	Statements []vexStatement  `json:"statements"`
}

type vexComponent struct {
	ID          string            `json:"@id"`
	Identifiers map[string]string `json:"identifiers"`
}

type vexStatement struct {
	Vulnerability struct {
		ID      string   `json:"@id"`
		Name    string   `json:"name"`
		Aliases []string `json:"aliases"`
	} `json:"vulnerability"`
	Products []struct {
		vexComponent
		Subcomponents []vexComponent `json:"subcomponents"`
	} `json:"products"`
	Status          string `json:"status"`
	Justification   string `json:"justification"`
	ImpactStatement string `json:"impact_statement"`
	StatusNotes     string `json:"status_notes"`
	Timestamp       string `json:"timestamp"`
}

// justifications are OpenVEX 0.2.0's not_affected justification labels.
var justifications = map[string]bool{
	"component_not_present": true, "vulnerable_code_not_present": true,
	"vulnerable_code_not_in_execute_path": true, "vulnerable_code_cannot_be_controlled_by_adversary": true,
	"inline_mitigations_already_exist": true,
}

// ParseOpenVEX reads an OpenVEX 0.2.0 document (JSON no deeper than
// MaxJSONDepth, at most MaxVEXStatements statements). It is strict about
// what a statement needs to be used: a vulnerability name, at least one
// product, a known status, and for not_affected a justification label or an
// impact statement, as the specification requires; a document breaking
// these is refused whole, naming the statement.
func ParseOpenVEX(data []byte) (*VEXDocument, error) {
	if err := untrusted.CheckJSONDepth(data, MaxJSONDepth); err != nil {
		return nil, err
	}
	var d vexDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(d.Context, "https://openvex.dev/ns") {
		return nil, fmt.Errorf("@context %q is not OpenVEX's (https://openvex.dev/ns/v0.2.0)", untrusted.Text(d.Context, 80))
	}
	if len(d.Statements) > MaxVEXStatements {
		return nil, fmt.Errorf("%d statements, over the limit of %d", len(d.Statements), MaxVEXStatements)
	}
	var docTime time.Time
	if d.Timestamp != "" {
		t, err := time.Parse(time.RFC3339, d.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("timestamp %q is not an RFC 3339 time", untrusted.Text(d.Timestamp, 40))
		}
		docTime = t
	}
	out := &VEXDocument{ID: d.ID, Author: d.Author}
	for i, s := range d.Statements {
		st := VEXStatement{Vulnerability: strings.TrimSpace(s.Vulnerability.Name), Status: s.Status, Justification: s.Justification, Time: docTime}
		if st.Vulnerability == "" {
			st.Vulnerability = strings.TrimSpace(s.Vulnerability.ID)
		}
		for _, a := range s.Vulnerability.Aliases {
			if a = strings.TrimSpace(a); a != "" {
				st.Aliases = append(st.Aliases, a)
			}
		}
		st.Impact = s.ImpactStatement
		if st.Impact == "" {
			st.Impact = s.StatusNotes
		}
		where := fmt.Sprintf("statements[%d]", i)
		if st.Vulnerability == "" {
			return nil, errors.New(where + ": no vulnerability name")
		}
		switch st.Status {
		case VEXNotAffected:
			if st.Justification == "" && s.ImpactStatement == "" {
				return nil, errors.New(where + ": not_affected without a justification or an impact_statement")
			}
			if st.Justification != "" && !justifications[st.Justification] {
				return nil, fmt.Errorf("%s: %q is not an OpenVEX justification", where, untrusted.Text(st.Justification, 80))
			}
		case VEXAffected, VEXFixed, VEXUnderInvestigation:
		default:
			return nil, fmt.Errorf("%s: status %q is not not_affected, affected, fixed or under_investigation", where, untrusted.Text(st.Status, 40))
		}
		if s.Timestamp != "" {
			t, err := time.Parse(time.RFC3339, s.Timestamp)
			if err != nil {
				return nil, fmt.Errorf("%s: timestamp %q is not an RFC 3339 time", where, untrusted.Text(s.Timestamp, 40))
			}
			st.Time = t
		}
		if len(s.Products) == 0 {
			return nil, errors.New(where + ": no products")
		}
		for _, p := range s.Products {
			prod := VEXProduct{IDs: p.ids()}
			for _, sc := range p.Subcomponents {
				prod.Subcomponents = append(prod.Subcomponents, sc.ids()...)
			}
			st.Products = append(st.Products, prod)
		}
		out.Statements = append(out.Statements, st)
	}
	return out, nil
}

func (c vexComponent) ids() []string {
	var ids []string
	if c.ID != "" {
		ids = append(ids, c.ID)
	}
	for _, k := range []string{"purl", "cpe23", "cpe22"} {
		if v := c.Identifiers[k]; v != "" {
			ids = append(ids, v)
		}
	}
	return ids
}

// namesImage reports whether product id names the image repository@digest
// (repository as "registry/path"): a purl pkg:oci/NAME@DIGEST whose name is
// the repository's last path component and whose repository_url qualifier,
// when present, is the repository; or a reference REPOSITORY@DIGEST.
func namesImage(id, repository, digest string) bool {
	id = strings.TrimSpace(id)
	if rest, ok := strings.CutPrefix(id, "pkg:oci/"); ok {
		rest, _, _ = strings.Cut(rest, "#")
		path, query, _ := strings.Cut(rest, "?")
		name, version, ok := strings.Cut(path, "@")
		if !ok {
			return false
		}
		v, err := url.PathUnescape(version)
		if err != nil || v != digest {
			return false
		}
		last := repository[strings.LastIndexByte(repository, '/')+1:]
		if n, err := url.PathUnescape(name); err != nil || !strings.EqualFold(n, last) {
			return false
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return false
		}
		if r := q.Get("repository_url"); r != "" {
			r = strings.TrimPrefix(strings.TrimPrefix(r, "https://"), "http://")
			return strings.EqualFold(r, repository)
		}
		return true
	}
	repo, d, ok := strings.Cut(id, "@")
	return ok && d == digest && strings.EqualFold(repo, repository)
}
