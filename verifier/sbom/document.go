package sbom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vouch-project/vouch/internal/untrusted"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
)

// MaxJSONDepth bounds the nesting of arrays and objects in an SBOM. Real
// SBOMs stay far below it (CycloneDX nests components in components);
// deeper documents are refused before any parser sees them.
const MaxJSONDepth = 100

// Formats of Document.Format.
const (
	FormatSPDX      = "SPDX"
	FormatCycloneDX = "CycloneDX"
)

// Document is what vouch reads from an SBOM, in either format.
type Document struct {
	// Format is FormatSPDX or FormatCycloneDX.
	Format string
	// SpecVersion is the format's version: "SPDX-2.3", "1.6".
	SpecVersion string
	// Created is when the document was made (SPDX creationInfo.created,
	// CycloneDX metadata.timestamp); zero when it has none or CreatedText
	// does not parse.
	Created time.Time
	// CreatedText is the creation time as written.
	CreatedText string
	// Tools names the tools that made the document ("syft-1.57.0").
	Tools []string
	// Packages are the document's packages (SPDX) or components,
	// including nested ones (CycloneDX).
	Packages []Package
}

// Package is one package of a Document.
type Package struct {
	// Name and Version are as the SBOM gives them; Version may be empty.
	Name    string
	Version string
	// License is the package's license expression as written: for SPDX
	// licenseConcluded, or licenseDeclared when the conclusion is empty or
	// NOASSERTION; for CycloneDX every entry of licenses (an expression, a
	// license id or a license name), joined by AND when there are several.
	// Empty when the SBOM gives none; NOASSERTION and NONE are kept.
	License string
	// PURL is the package URL, when the SBOM gives one.
	PURL string
	// Kind is what the package is, as the SBOM says: SPDX
	// primaryPackagePurpose ("LIBRARY", "CONTAINER", "OPERATING-SYSTEM"),
	// CycloneDX component type ("library", "file", "operating-system").
	// Empty when the SBOM does not say.
	Kind string
	// Root marks what the document describes (SPDX DESCRIBES, CycloneDX
	// metadata.component): the subject, such as the scanned image, rather
	// than one of its packages.
	Root bool
}

// Licensable reports whether p is held to Config.RequireLicenses: not what
// the document describes, nor a file or an operating system (syft lists the
// package database it read and the distribution as CycloneDX components).
func (p *Package) Licensable() bool {
	if p.Root {
		return false
	}
	switch strings.ToLower(p.Kind) {
	case "file", "operating-system":
		return false
	}
	return true
}

// ParseSPDX reads an SPDX 2.1, 2.2 or 2.3 JSON document with
// spdx/tools-golang's JSON loader.
func ParseSPDX(data []byte) (doc *Document, err error) {
	if err := untrusted.CheckJSONDepth(data, MaxJSONDepth); err != nil {
		return nil, err
	}
	// tools-golang removes null relationships one at a time (quadratic in
	// their number) and dereferences null packages: refuse nulls first.
	var pre struct {
		SPDXVersion   *string   `json:"spdxVersion"`
		Packages      []nonNull `json:"packages"`
		Relationships []nonNull `json:"relationships"`
		Files         []nonNull `json:"files"`
		Other         []nonNull `json:"hasExtractedLicensingInfos"`
		Annotations   []nonNull `json:"annotations"`
	}
	if err := json.Unmarshal(data, &pre); err != nil {
		return nil, untrusted.JSONError(err)
	}
	if pre.SPDXVersion == nil {
		return nil, errors.New("no spdxVersion: not an SPDX JSON document")
	}
	if v := *pre.SPDXVersion; v != "SPDX-2.1" && v != "SPDX-2.2" && v != "SPDX-2.3" {
		return nil, fmt.Errorf("unsupported spdxVersion %q (vouch reads SPDX-2.1, SPDX-2.2 and SPDX-2.3 JSON)", v)
	}
	for field, list := range map[string][]nonNull{"packages": pre.Packages, "relationships": pre.Relationships,
		"files": pre.Files, "hasExtractedLicensingInfos": pre.Other, "annotations": pre.Annotations} {
		for i, ok := range list {
			if !ok {
				return nil, fmt.Errorf("%s[%d] is null", field, i)
			}
		}
	}

	var sd *spdx.Document
	err = guard("spdx/tools-golang", func() error {
		var err error
		sd, err = spdxjson.Read(bytes.NewReader(data))
		return err
	})
	if err != nil {
		return nil, untrusted.JSONError(err)
	}
	doc = &Document{Format: FormatSPDX, SpecVersion: *pre.SPDXVersion}
	if ci := sd.CreationInfo; ci != nil {
		doc.CreatedText = ci.Created
		for _, c := range ci.Creators {
			if c.CreatorType == "Tool" {
				doc.Tools = append(doc.Tools, c.Creator)
			}
		}
	}
	doc.Created = parseTime(doc.CreatedText)

	described := map[string]bool{}
	for _, r := range sd.Relationships {
		if r == nil {
			continue
		}
		switch r.Relationship {
		case "DESCRIBES":
			if r.RefA.ElementRefID == sd.SPDXIdentifier && r.RefB.DocumentRefID == "" {
				described[string(r.RefB.ElementRefID)] = true
			}
		case "DESCRIBED_BY":
			if r.RefB.ElementRefID == sd.SPDXIdentifier && r.RefA.DocumentRefID == "" {
				described[string(r.RefA.ElementRefID)] = true
			}
		}
	}
	doc.Packages = make([]Package, 0, len(sd.Packages))
	for _, p := range sd.Packages {
		if p == nil {
			continue
		}
		pkg := Package{
			Name:    p.PackageName,
			Version: p.PackageVersion,
			License: spdxLicense(p.PackageLicenseConcluded, p.PackageLicenseDeclared),
			Kind:    p.PrimaryPackagePurpose,
			Root:    described[string(p.PackageSPDXIdentifier)],
		}
		for _, ref := range p.PackageExternalReferences {
			if ref != nil && strings.EqualFold(ref.RefType, "purl") {
				pkg.PURL = ref.Locator
				break
			}
		}
		doc.Packages = append(doc.Packages, pkg)
	}
	return doc, nil
}

// spdxLicense picks the license that counts: the concluded one when it
// says something, else the declared one.
func spdxLicense(concluded, declared string) string {
	c := strings.TrimSpace(concluded)
	if c != "" && !strings.EqualFold(c, NoAssertion) {
		return c
	}
	d := strings.TrimSpace(declared)
	if d != "" {
		return d
	}
	return c
}

// ParseCycloneDX reads a CycloneDX JSON BOM (spec versions 1.2 to 1.7)
// with CycloneDX/cyclonedx-go.
func ParseCycloneDX(data []byte) (*Document, error) {
	if err := untrusted.CheckJSONDepth(data, MaxJSONDepth); err != nil {
		return nil, err
	}
	var pre struct {
		BOMFormat   *string `json:"bomFormat"`
		SpecVersion *string `json:"specVersion"`
	}
	if err := json.Unmarshal(data, &pre); err != nil {
		return nil, untrusted.JSONError(err)
	}
	if pre.BOMFormat == nil || *pre.BOMFormat != "CycloneDX" {
		return nil, errors.New(`no "bomFormat": "CycloneDX": not a CycloneDX JSON BOM`)
	}
	switch v := pre.SpecVersion; {
	case v == nil:
		return nil, errors.New("no specVersion")
	case !slices.Contains([]string{"1.2", "1.3", "1.4", "1.5", "1.6", "1.7"}, *v):
		return nil, fmt.Errorf("unsupported CycloneDX specVersion %q (vouch reads JSON BOMs of versions 1.2 to 1.7)", *v)
	}
	var bom cdx.BOM
	err := guard("cyclonedx-go", func() error {
		return cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom)
	})
	if err != nil {
		return nil, untrusted.JSONError(err)
	}
	doc := &Document{Format: FormatCycloneDX, SpecVersion: bom.SpecVersion.String()}
	if md := bom.Metadata; md != nil {
		doc.CreatedText = md.Timestamp
		if tc := md.Tools; tc != nil {
			if tc.Tools != nil {
				for _, t := range *tc.Tools {
					doc.Tools = append(doc.Tools, joinNonEmpty(t.Name, t.Version))
				}
			}
			if tc.Components != nil {
				for _, c := range *tc.Components {
					doc.Tools = append(doc.Tools, joinNonEmpty(c.Name, c.Version))
				}
			}
		}
		if md.Component != nil {
			doc.Packages = append(doc.Packages, cdxPackage(md.Component, true))
			addComponents(doc, md.Component.Components)
		}
	}
	doc.Created = parseTime(doc.CreatedText)
	addComponents(doc, bom.Components)
	return doc, nil
}

// addComponents appends components and their nested components. Nesting
// is bounded by MaxJSONDepth.
func addComponents(doc *Document, list *[]cdx.Component) {
	if list == nil {
		return
	}
	for i := range *list {
		c := &(*list)[i]
		doc.Packages = append(doc.Packages, cdxPackage(c, false))
		addComponents(doc, c.Components)
	}
}

func cdxPackage(c *cdx.Component, root bool) Package {
	p := Package{Name: c.Name, Version: c.Version, PURL: c.PackageURL, Kind: string(c.Type), Root: root}
	if c.Licenses == nil {
		return p
	}
	var parts []string
	for _, l := range *c.Licenses {
		var s string
		switch {
		case strings.TrimSpace(l.Expression) != "":
			s = strings.TrimSpace(l.Expression)
		case l.License != nil && strings.TrimSpace(l.License.ID) != "":
			s = strings.TrimSpace(l.License.ID)
		case l.License != nil:
			s = strings.TrimSpace(l.License.Name)
		}
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 1 {
		p.License = parts[0]
	} else {
		for i, s := range parts {
			if strings.ContainsAny(s, " \t()") {
				parts[i] = "(" + s + ")"
			}
		}
		p.License = strings.Join(parts, " AND ")
	}
	return p
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "-" + b
}

// parseTime reads an RFC 3339 time, as both formats write it; zero when s
// is empty or malformed.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	return t
}

// nonNull records whether a JSON value is something other than null.
type nonNull bool

func (n *nonNull) UnmarshalJSON(b []byte) error {
	*n = string(b) != "null"
	return nil
}

// guard runs a third-party parser and turns a panic into an error: content
// from outside must never take the process down.
func guard(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s could not parse the document (it panicked: %v)", what, r)
		}
	}()
	return fn()
}
