package vulnreport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/untrusted"
	"github.com/vouch-project/vouch/verifier/internal/intoto"
	"github.com/vouch-project/vouch/verifier/internal/layer"
)

// VEXConfig says which VEX documents the verifier uses.
//
// +kubebuilder:object:generate=true
type VEXConfig struct {
	// TrustedBy names the signature verifiers (configured verifiers, such
	// as a notation verifier) of which one must pass a signature attached
	// to a VEX document for the document to count. Required: an unsigned
	// VEX document, or one signed by no identity these verifiers trust,
	// suppresses nothing.
	TrustedBy []string `json:"trustedBy"`
	// CycloneDX also reads CycloneDX documents for VEX statements
	// (vulnerabilities with an analysis): attached as referrers
	// (application/vnd.cyclonedx+json), whose every document is fetched to
	// find out, SBOMs included, and as the predicates of attestations
	// (`cosign attest --type cyclonedx`). Optional; default false.
	CycloneDX bool `json:"cycloneDX,omitempty"`
}

// notarySignatureType is the artifact type of Notary Project signatures.
const notarySignatureType = "application/vnd.cncf.notary.signature"

// Bounds on the VEX discovery that a report's check does.
const (
	// MaxVEXReferrerPages bounds the referrer pages listed, of the subject
	// and of each VEX document.
	MaxVEXReferrerPages = 10
	// MaxVEXCandidates bounds the referrer manifests fetched to find the
	// VEX documents of a subject, and the signatures of one.
	MaxVEXCandidates = 64
	// MaxVEXDocuments bounds the VEX documents read for one subject.
	MaxVEXDocuments = 16
)

// VEXSuppression is the VEX statement that took a finding out of the
// policy's reach.
type VEXSuppression struct {
	// Document is the digest of the VEX document's manifest.
	Document string
	// Status is not_affected or fixed.
	Status string
	// Justification and Impact are the statement's.
	Justification, Impact string
	// TrustedBy names the verifier that passed the document's signature,
	// and Signature that signature's manifest digest.
	TrustedBy, Signature string
}

// Link gives the verifier the verifiers that VEXConfig.TrustedBy names;
// lookup returns a configured verifier by its name in the config. It is
// called once, after every verifier is built, and before Verify.
func (v *Verifier) Link(lookup func(name string) (vouch.Verifier, bool)) error {
	if v.policy.vex == nil {
		return nil
	}
	var out []vouch.Verifier
	for i, name := range v.policy.vex.TrustedBy {
		t, ok := lookup(name)
		if !ok {
			return fmt.Errorf("%s.vex.trustedBy[%d]: no verifier is named %q", v.name, i, name)
		}
		if t == vouch.Verifier(v) {
			return fmt.Errorf("%s.vex.trustedBy[%d]: a verifier cannot vouch for itself", v.name, i)
		}
		out = append(out, t)
	}
	v.vexTrust = out
	v.attestations = slices.ContainsFunc(out, func(t vouch.Verifier) bool {
		return t.Handles(vouch.CosignAttestationType) || t.Handles(vouch.SigstoreBundleType) || t.Handles(intoto.MediaTypeInToto)
	})
	return nil
}

// trustedVEX is one VEX document that a trusted signature vouches for.
type trustedVEX struct {
	digest, trustedBy, signature string
	doc                          *VEXDocument
}

// ignoredVEX is a VEX document that does not count, and why.
type ignoredVEX struct {
	digest, why string
}

// findVEX lists the VEX documents attached to subject, as referrers of
// their own or as VEX attestations, and keeps those that one of the
// trust verifiers vouches for.
func (v *Verifier) findVEX(ctx context.Context, req *vouch.VerifyRequest) ([]trustedVEX, []ignoredVEX, error) {
	// Signatures of the image, as listed, are not fetched: they hold no VEX.
	// (A listing that lies only hides documents: nothing more counts.)
	skip := func(d ocispec.Descriptor) bool {
		return d.ArtifactType == notarySignatureType || d.ArtifactType == vouch.CosignSignatureType
	}
	cands, err := referrersOf(ctx, req.Repository, req.Subject, skip, func(m *ocispec.Manifest) bool {
		t := artifactTypeOf(m)
		return t == VEXMediaType || v.attestations && intoto.Handles(t) || v.policy.vex.CycloneDX && t == CycloneDXMediaType
	})
	if err != nil {
		return nil, nil, err
	}
	if v.attestations {
		att, err := cosignAttestation(ctx, req.Repository, req.Subject)
		if err != nil {
			return nil, nil, err
		}
		if att != nil {
			cands = append(cands, *att)
		}
	}
	var trusted []trustedVEX
	var ignored []ignoredVEX
	docs := 0
	for _, d := range cands {
		dd := d.desc.Digest.String()
		var (
			t   *trustedVEX
			why string
		)
		switch artifactTypeOf(d.m) {
		case VEXMediaType:
			t, why, err = v.referrerVEX(ctx, req, d)
		case CycloneDXMediaType:
			t, why, err = v.cycloneDXVEX(ctx, req, d)
		default:
			t, why, err = v.attestedVEX(ctx, req, d)
		}
		switch {
		case err != nil:
			return nil, nil, err
		case t == nil && why == "":
			continue // an attestation of something else
		}
		if docs++; docs > MaxVEXDocuments {
			return nil, nil, fmt.Errorf("more than %d VEX documents are attached to %s", MaxVEXDocuments, req.Subject.Digest)
		}
		if t == nil {
			ignored = append(ignored, ignoredVEX{dd, why})
			continue
		}
		trusted = append(trusted, *t)
	}
	return trusted, ignored, nil
}

// referrerVEX reads the OpenVEX document that the referrer d holds, if a
// trust verifier passes a signature on it; else it says why not.
func (v *Verifier) referrerVEX(ctx context.Context, req *vouch.VerifyRequest, d referrer) (*trustedVEX, string, error) {
	by, sig, why, err := v.vouchedFor(ctx, req, d.desc)
	if err != nil || by == "" {
		return nil, why, err
	}
	l, _, ok := layer.Pick(d.m.Layers, func(mt string) bool { return mt == VEXMediaType }, layer.OnlyLayer)
	if !ok {
		return nil, "no layer of media type " + VEXMediaType, nil
	}
	data, err := req.Repository.Fetch(ctx, l)
	if err != nil {
		return nil, "", fmt.Errorf("fetch VEX document %s: %w", l.Digest, err)
	}
	doc, err := ParseOpenVEX(data)
	if err != nil {
		return nil, "not an OpenVEX 0.2.0 document vouch reads: " + untrusted.Text(err.Error(), 256), nil
	}
	return &trustedVEX{digest: d.desc.Digest.String(), trustedBy: by, signature: sig, doc: doc}, "", nil
}

// cycloneDXVEX reads the VEX statements of the CycloneDX document that the
// referrer d holds and keeps them if a trust verifier passes a signature on
// it. It returns neither a document nor a reason for a CycloneDX document
// without VEX statements (an SBOM).
func (v *Verifier) cycloneDXVEX(ctx context.Context, req *vouch.VerifyRequest, d referrer) (*trustedVEX, string, error) {
	l, _, ok := layer.Pick(d.m.Layers, func(mt string) bool { return mt == CycloneDXMediaType }, layer.OnlyLayer)
	if !ok {
		return nil, "", nil
	}
	data, err := req.Repository.Fetch(ctx, l)
	if err != nil {
		return nil, "", fmt.Errorf("fetch CycloneDX document %s: %w", l.Digest, err)
	}
	doc, err := ParseCycloneDXVEX(data)
	if err != nil && strings.HasPrefix(err.Error(), "vulnerabilities[") {
		return nil, "not CycloneDX VEX that vouch reads: " + untrusted.Text(err.Error(), 256), nil
	}
	if err != nil || len(doc.Statements) == 0 {
		return nil, "", nil // not VEX that vouch reads: left to the sbom verifier
	}
	by, sig, why, err := v.vouchedFor(ctx, req, d.desc)
	if err != nil || by == "" {
		return nil, why, err
	}
	return &trustedVEX{digest: d.desc.Digest.String(), trustedBy: by, signature: sig, doc: doc}, "", nil
}

// PredicateOpenVEX is the predicate type that `cosign attest --type
// openvex` writes; an OpenVEX attestation's predicate type starts with it.
const PredicateOpenVEX = "https://openvex.dev/ns"

// PredicateCycloneDX is the predicate type that `cosign attest --type
// cyclonedx` writes; a CycloneDX attestation's predicate type starts with
// it (https://cyclonedx.org/bom/v1.6 too). Such a predicate is VEX when it
// holds vulnerabilities with an analysis, and counts only with
// VEXConfig.CycloneDX.
const PredicateCycloneDX = "https://cyclonedx.org/bom"

// attestedVEX reads the VEX statement (OpenVEX, or CycloneDX with
// analysed vulnerabilities) in the attestation manifest d (cosign's .att
// tag, an in-toto referrer, a Sigstore bundle), if a trust verifier passes
// it with a claim of its predicate type. It returns neither a document nor
// a reason when d holds no VEX statement.
func (v *Verifier) attestedVEX(ctx context.Context, req *vouch.VerifyRequest, d referrer) (*trustedVEX, string, error) {
	stmts, err := intoto.Read(ctx, *d.m, req.Repository.Fetch)
	if err != nil {
		return nil, "", fmt.Errorf("attestation %s: %w", d.desc.Digest, err)
	}
	// A VEX statement, its document, or why the document is not one vouch
	// reads (said only once a trusted signature vouches for it).
	type attested struct {
		s   intoto.Statement
		doc *VEXDocument
		bad string
	}
	var vex []attested
	for _, s := range stmts {
		switch {
		case s.Problem != "":
		case strings.HasPrefix(s.PredicateType, PredicateOpenVEX):
			doc, err := ParseOpenVEX(s.Predicate)
			if err != nil {
				vex = append(vex, attested{s: s, bad: "not an OpenVEX 0.2.0 document vouch reads: " + untrusted.Text(err.Error(), 256)})
				continue
			}
			vex = append(vex, attested{s: s, doc: doc})
		case v.policy.vex.CycloneDX && strings.HasPrefix(s.PredicateType, PredicateCycloneDX):
			doc, err := ParseCycloneDXVEX(s.Predicate)
			switch {
			case err != nil && strings.HasPrefix(err.Error(), "vulnerabilities["):
				vex = append(vex, attested{s: s, bad: "not CycloneDX VEX that vouch reads: " + untrusted.Text(err.Error(), 256)})
			case err == nil && len(doc.Statements) > 0:
				vex = append(vex, attested{s: s, doc: doc})
			}
			// Else an SBOM, not VEX: left to the sbom verifier.
		}
	}
	switch {
	case len(vex) == 0:
		return nil, "", nil
	case len(vex) > 1:
		// A verifier's claim says that one statement of a type passed, not
		// which: with one, it is that one.
		return nil, fmt.Sprintf("the attestation holds %d VEX statements; vouch uses one that holds one", len(vex)), nil
	}
	s := vex[0].s
	if !s.Names(req.Subject.Digest.String()) {
		return nil, "the VEX attestation is about " + untrusted.Text(strings.Join(s.Subjects, ", "), 256) + ", not " + req.Subject.Digest.String(), nil
	}
	a := d.desc
	a.ArtifactType = artifactTypeOf(d.m)
	if d.artifactType != "" {
		a.ArtifactType = d.artifactType
	}
	areq := &vouch.VerifyRequest{Reference: req.Reference, Subject: req.Subject, Artifact: a, Manifest: *d.m, Repository: req.Repository}
	var whys []string
	by := ""
	for _, t := range v.vexTrust {
		if by != "" || !t.Handles(a.ArtifactType) {
			continue
		}
		res, err := t.Verify(ctx, areq)
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		if err != nil {
			whys = append(whys, fmt.Sprintf("%s could not check it: %v", t.Name(), err))
			continue
		}
		for _, c := range res.Claims {
			if c.Kind == vouch.ClaimAttestation && c.PredicateType == s.PredicateType && c.Outcome == vouch.Passed {
				by = t.Name()
			}
		}
		if by == "" {
			whys = append(whys, fmt.Sprintf("%s: %s: %s", t.Name(), res.Outcome, res.Reason))
		}
	}
	if by == "" {
		if len(whys) == 0 {
			return nil, "no trusted signature: none of " + strings.Join(v.policy.vex.TrustedBy, ", ") + " checks " + a.ArtifactType, nil
		}
		return nil, "no trusted signature: " + untrusted.Text(strings.Join(whys, "; "), 512), nil
	}
	if vex[0].bad != "" {
		return nil, vex[0].bad, nil
	}
	return &trustedVEX{digest: d.desc.Digest.String(), trustedBy: by, signature: d.desc.Digest.String(), doc: vex[0].doc}, "", nil
}

// cosignAttestation returns the manifest of cosign's attestation tag for
// subject (sha256-<hex>.att), or nil when there is none.
func cosignAttestation(ctx context.Context, repo vouch.Repository, subject ocispec.Descriptor) (*referrer, error) {
	tag := strings.Replace(subject.Digest.String(), ":", "-", 1) + ".att"
	desc, err := repo.Resolve(ctx, tag)
	if errors.Is(err, vouch.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", tag, err)
	}
	data, err := repo.Fetch(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", tag, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, nil // not a manifest: nothing here vouches for anything
	}
	return &referrer{desc: desc, m: &m, artifactType: vouch.CosignAttestationType}, nil
}

// vouchedFor returns the verifier that passed a signature of the VEX
// document doc and that signature's digest, or why none did.
func (v *Verifier) vouchedFor(ctx context.Context, req *vouch.VerifyRequest, doc ocispec.Descriptor) (string, string, string, error) {
	handled := func(m *ocispec.Manifest) bool {
		for _, t := range v.vexTrust {
			if t.Handles(artifactTypeOf(m)) {
				return true
			}
		}
		return false
	}
	sigs, err := referrersOf(ctx, req.Repository, doc, nil, handled)
	if err != nil {
		return "", "", "", err
	}
	if len(sigs) == 0 {
		return "", "", "unsigned: no signature that " + strings.Join(v.policy.vex.TrustedBy, " or ") + " checks", nil
	}
	var whys []string
	for _, s := range sigs {
		a := s.desc
		a.ArtifactType = artifactTypeOf(s.m)
		sreq := &vouch.VerifyRequest{Reference: req.Reference, Subject: doc, Artifact: a, Manifest: *s.m, Repository: req.Repository}
		for _, t := range v.vexTrust {
			if !t.Handles(a.ArtifactType) {
				continue
			}
			res, err := t.Verify(ctx, sreq)
			if ctx.Err() != nil {
				return "", "", "", ctx.Err()
			}
			switch {
			case err != nil:
				whys = append(whys, fmt.Sprintf("%s could not check signature %s: %v", t.Name(), vouch.ShortDigest(a.Digest), err))
			case res.Outcome == vouch.Passed:
				return t.Name(), a.Digest.String(), "", nil
			default:
				whys = append(whys, fmt.Sprintf("%s: signature %s %s: %s", t.Name(), vouch.ShortDigest(a.Digest), res.Outcome, res.Reason))
			}
		}
	}
	return "", "", "no trusted signature: " + untrusted.Text(strings.Join(whys, "; "), 512), nil
}

// referrer is a referrer's descriptor and its parsed manifest.
type referrer struct {
	desc ocispec.Descriptor
	m    *ocispec.Manifest
	// artifactType, when set, is what vouch calls the artifact (cosign's
	// .att tag), not what its manifest says.
	artifactType string
}

// referrersOf lists the referrers of desc whose fetched manifest keep
// accepts and whose subject is desc. The listed artifact types are not
// trusted (registries report them wrongly): each manifest is fetched, at
// most MaxVEXCandidates of them, except those skip (when not nil) rules out
// by their listing.
func referrersOf(ctx context.Context, repo vouch.Repository, desc ocispec.Descriptor, skip func(ocispec.Descriptor) bool, keep func(*ocispec.Manifest) bool) ([]referrer, error) {
	var listed []ocispec.Descriptor
	pages := 0
	err := repo.Referrers(ctx, desc, "", func(page []ocispec.Descriptor) error {
		if pages++; pages > MaxVEXReferrerPages {
			return fmt.Errorf("more than %d pages of referrers of %s", MaxVEXReferrerPages, desc.Digest)
		}
		listed = append(listed, page...)
		return nil
	})
	if err != nil && !errors.Is(err, vouch.ErrNotFound) {
		return nil, fmt.Errorf("list referrers of %s: %w", desc.Digest, err)
	}
	var out []referrer
	fetched := 0
	for _, d := range listed {
		if d.MediaType != ocispec.MediaTypeImageManifest || skip != nil && skip(d) {
			continue
		}
		if fetched++; fetched > MaxVEXCandidates {
			return nil, fmt.Errorf("more than %d referrers of %s to look through for VEX documents", MaxVEXCandidates, desc.Digest)
		}
		data, err := repo.Fetch(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("fetch referrer %s: %w", d.Digest, err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			continue // not a manifest: nothing here vouches for anything
		}
		if m.Subject == nil || m.Subject.Digest != desc.Digest || !keep(&m) {
			continue
		}
		out = append(out, referrer{desc: d, m: &m})
	}
	return out, nil
}

// artifactTypeOf is a manifest's artifact type, else its config's media
// type (as OCI image-spec 1.1 says of artifacts).
func artifactTypeOf(m *ocispec.Manifest) string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	return m.Config.MediaType
}

// applyVEX suppresses the findings of rep that a statement of a trusted
// VEX document says do not affect the image (repository@digests) and
// returns what Details should say of the documents.
func applyVEX(rep *Report, docs []trustedVEX, ignored []ignoredVEX, repository string, digests []string) map[string]any {
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if f.Suppression != nil {
			continue
		}
		var best *VEXStatement
		var from *trustedVEX
		for d := range docs {
			for s := range docs[d].doc.Statements {
				st := &docs[d].doc.Statements[s]
				if !st.about(f) || !st.forImage(f, repository, digests) {
					continue
				}
				// The latest statement stands (OpenVEX 0.2.0); of two at
				// the same time, the one that suppresses nothing.
				if best == nil || st.Time.After(best.Time) || st.Time.Equal(best.Time) && !suppresses(st.Status) {
					best, from = st, &docs[d]
				}
			}
		}
		if best == nil || !suppresses(best.Status) {
			continue
		}
		why := best.Justification
		if why == "" {
			why = best.Impact
		}
		f.Suppression = &Suppression{Kind: "vex", Justification: untrusted.Text(why, MaxJustification), VEX: &VEXSuppression{
			Document: from.digest, Status: best.Status, Justification: untrusted.Text(best.Justification, MaxJustification),
			Impact: untrusted.Text(best.Impact, MaxJustification), TrustedBy: from.trustedBy, Signature: from.signature,
		}}
	}
	var used, skipped []any
	for _, d := range docs {
		used = append(used, map[string]any{"document": d.digest, "trustedBy": d.trustedBy, "signature": d.signature, "statements": len(d.doc.Statements)})
	}
	for _, d := range ignored {
		skipped = append(skipped, map[string]any{"document": d.digest, "ignored": d.why})
	}
	out := map[string]any{}
	if len(used) > 0 {
		out["vexDocuments"] = used
	}
	if len(skipped) > 0 {
		out["vexIgnored"] = skipped
	}
	return out
}

func suppresses(status string) bool { return status == VEXNotAffected || status == VEXFixed }

// about reports whether s is about f's vulnerability: its name or an alias
// equals f's rule id or one of its vulnerability ids, ignoring case.
func (s *VEXStatement) about(f *Finding) bool {
	for _, id := range append([]string{f.RuleID}, f.IDs...) {
		if strings.EqualFold(id, s.Vulnerability) {
			return true
		}
		for _, a := range s.Aliases {
			if strings.EqualFold(id, a) {
				return true
			}
		}
	}
	return false
}

// forImage reports whether one of s's products names the image; a product
// with subcomponents counts only for a finding in one of them (matched by
// package name).
func (s *VEXStatement) forImage(f *Finding, repository string, digests []string) bool {
	for _, p := range s.Products {
		named := false
		for _, id := range p.IDs {
			for _, d := range digests {
				named = named || namesImage(id, repository, d)
			}
		}
		if !named {
			continue
		}
		if len(p.Subcomponents) == 0 {
			return true
		}
		for _, sc := range p.Subcomponents {
			if f.Package != "" && slices.ContainsFunc(packageNames(sc), func(n string) bool { return strings.EqualFold(n, f.Package) }) {
				return true
			}
		}
	}
	return false
}

// packageNames are the names a scanner may give the package a purl names:
// "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1" is "log4j-core",
// "org.apache.logging.log4j/log4j-core" or
// "org.apache.logging.log4j:log4j-core" (Trivy's); an id that is no purl
// is its own name.
func packageNames(id string) []string {
	rest, ok := strings.CutPrefix(id, "pkg:")
	if !ok {
		return []string{id}
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "@")
	_, path, ok := strings.Cut(rest, "/") // drop the type
	if !ok {
		return nil
	}
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	names := []string{path[strings.LastIndexByte(path, '/')+1:]}
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		names = append(names, path, path[:i]+":"+path[i+1:])
	}
	return names
}
