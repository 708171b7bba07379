package cosign

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/vouch-project/vouch"
)

// Stages of a check, in order: how far a failed check got, to choose which
// failure among several signatures to report.
const (
	stageRead = iota
	stageSigner
	stageTlog
	stageSigstore
	stageIdentity
	stageDigest
	stageContent
	stagePassed
)

// finding is the outcome of one signature.
type finding struct {
	layer   int
	outcome vouch.Outcome
	stage   int
	reason  string
	details map[string]any
	// kind and predicateType say what the layer claims; kind is "" when
	// the layer could not be read far enough to tell.
	kind          vouch.ClaimKind
	predicateType string
	// level is the SLSA Build level a provenance shows (vouch.Claim).
	level int
}

func failedAt(stage int, reason string) finding {
	return finding{outcome: vouch.Failed, stage: stage, reason: reason}
}

// signer is who made a signature, as found before sigstore-go checks it.
type signer struct {
	key  *trustedKey
	cert *certificate.Summary
	// fulcio says the certificate is checked against the trusted root
	// (with SCTs), not the configured roots.
	fulcio bool
	mat    *material
	// when says at what time the certificate is checked, for reasons.
	when string
}

// check runs the checks on one candidate.
func (v *Verifier) check(req *vouch.VerifyRequest, c *candidate) finding {
	f := v.checkStages(req, c)
	f.layer = c.layer
	if f.details == nil {
		f.details = map[string]any{}
	}
	f.details["form"] = c.form
	if c.stmt != nil {
		f.details["predicateType"] = c.stmt.PredicateType
	}
	f.kind = vouch.ClaimSignature
	if c.isAttestation() {
		f.kind, f.predicateType = vouch.ClaimAttestation, c.stmt.PredicateType
	}
	return f
}

func (v *Verifier) checkStages(req *vouch.VerifyRequest, c *candidate) finding {
	if c.isAttestation() {
		if v.att == nil {
			return finding{outcome: vouch.Skipped, stage: stageRead, reason: fmt.Sprintf("attestation of predicate type %s not checked: the verifier has no attestations section", c.stmt.PredicateType)}
		}
		if !v.att.accepts(c.stmt.PredicateType) {
			return finding{outcome: vouch.Skipped, stage: stageRead, reason: fmt.Sprintf("attestation predicate type %s not accepted (accepted: %s)", c.stmt.PredicateType, v.att.acceptedText())}
		}
	}
	if c.unsigned {
		return v.checkUnsigned(req, c)
	}
	s, f := v.findSigner(c)
	if s == nil {
		return f
	}
	if !v.ignoreTlog && len(c.entries) == 0 {
		return failedAt(stageTlog, "missing transparency-log evidence: the signature carries no Rekor entry (cosign signs without one under --tlog-upload=false; ignoreTlogUnsafe accepts that, for private setups only)")
	}
	if f, ok := v.sigstoreVerify(c, s); !ok {
		return f
	}
	if f, ok := checkSubject(req, c); !ok {
		return f
	}
	if f, ok := v.checkContent(c); !ok {
		return f
	}
	f = v.passed(c, s)
	if c.isAttestation() && isSLSA(c.stmt.PredicateType) {
		f.level = 2
		if v.att.hardenedBuilder(c.stmt) {
			f.level = 3
		}
	}
	return f
}

// checkUnsigned checks an unsigned statement's subject and predicate. It
// can at best be skipped: nothing vouches for who made it, unless the
// policy requires a signature on its manifest, or on the index that lists
// it.
func (v *Verifier) checkUnsigned(req *vouch.VerifyRequest, c *candidate) finding {
	if !c.isAttestation() {
		return failedAt(stageRead, "an unsigned statement of predicate type "+PredicateCosignSign+" is no signature")
	}
	if f, ok := checkSubject(req, c); !ok {
		return f
	}
	if f, ok := v.checkContent(c); !ok {
		return f
	}
	f := finding{outcome: vouch.Skipped, stage: stageContent, reason: fmt.Sprintf("unsigned attestation %s: its subject and predicate pass the checks, but no signature says who made it (require one on its manifest)", c.stmt.PredicateType)}
	if isSLSA(c.stmt.PredicateType) {
		f.level = 1
	}
	return f
}

// findSigner finds the configured key that verifies the signature, or the
// certificate and the trust it must chain to.
func (v *Verifier) findSigner(c *candidate) (*signer, finding) {
	for _, k := range v.keys {
		for _, kv := range k.verifiers {
			if c.verifyWith(kv) == nil {
				return &signer{key: k, mat: v.material(nil, k, kv)}, finding{}
			}
		}
	}
	certTrusted := len(v.roots) > 0 || v.fulcio
	switch {
	case c.cert == nil && len(v.keys) == 0:
		return nil, failedAt(stageSigner, "no matching key: the signature carries no certificate, and no keys are configured")
	case c.cert == nil:
		return nil, failedAt(stageSigner, fmt.Sprintf("no matching key: the signature does not verify with %s", v.keysText()))
	}
	sum, err := certificate.SummarizeCertificate(c.cert)
	if err != nil {
		return nil, failedAt(stageSigner, "unreadable signing certificate: "+err.Error())
	}
	who := certText(sum)
	if !certTrusted {
		return nil, failedAt(stageSigner, fmt.Sprintf("no matching key: the signature does not verify with %s, and its certificate (%s) is not trusted: no certificateRoots or keyless identities are configured", v.keysText(), who))
	}
	own, err := newTrustedKey(c.cert.PublicKey, "certificate")
	if err != nil {
		return nil, failedAt(stageSigner, "unsupported signing certificate: "+err.Error())
	}
	verified := false
	for _, kv := range own.verifiers {
		if c.verifyWith(kv) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, failedAt(stageSigner, fmt.Sprintf("bad signature: it does not verify with the key of its own certificate (%s)", who))
	}
	if len(v.roots) > 0 && chainsTo(c.cert, c.intermediates, v.roots) {
		return &signer{cert: &sum, mat: v.material(v.roots, nil, nil)}, finding{}
	}
	if v.fulcio {
		return &signer{cert: &sum, fulcio: true}, finding{}
	}
	return nil, failedAt(stageSigner, fmt.Sprintf("certificate (%s) does not chain to the configured certificateRoots", who))
}

func (v *Verifier) keysText() string {
	switch len(v.keys) {
	case 0:
		return "any key (none are configured)"
	case 1:
		return "the configured " + v.keys[0].label()
	}
	return fmt.Sprintf("any of the %d configured keys", len(v.keys))
}

func certText(s certificate.Summary) string {
	issuer := s.Issuer
	if issuer == "" {
		issuer = "(none)"
	}
	return fmt.Sprintf("subject %s, issuer %s", orNone(s.SubjectAlternativeName), issuer)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// material assembles the trust for a key or for certificates under roots:
// those, and the trusted root's transparency logs and timestamp
// authorities.
func (v *Verifier) material(roots []*x509.Certificate, k *trustedKey, kv signature.Verifier) *material {
	m := &material{key: k, keyVerifier: kv}
	for _, r := range roots {
		m.cas = append(m.cas, &root.FulcioCertificateAuthority{Root: r})
	}
	if v.trustedRoot != nil {
		m.rekor = v.trustedRoot.RekorLogs()
		m.tsas = v.trustedRoot.TimestampingAuthorities()
	}
	return m
}

// chainsTo reports whether cert chains to one of roots, at some time in its
// validity: the time that counts is checked by sigstore-go.
func chainsTo(cert *x509.Certificate, intermediates, roots []*x509.Certificate) bool {
	rp, ip := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rp.AddCert(r)
	}
	for _, c := range intermediates {
		ip.AddCert(c)
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, CurrentTime: cert.NotBefore, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// sigstoreVerify runs sigstore-go's verifier with the options the signer
// and the configuration call for.
func (v *Verifier) sigstoreVerify(c *candidate, s *signer) (finding, bool) {
	var (
		opts   = []verify.VerifierOption{verify.WithoutStatementPredicate()}
		policy []verify.PolicyOption
		tm     root.TrustedMaterial
	)
	entity := verify.SignedEntity(c.entity)
	switch {
	case s.key != nil:
		tm = s.mat
		entity = withContent{SignedEntity: c.entity, vc: keyContent{}}
		if v.ignoreTlog {
			opts = append(opts, verify.WithNoObserverTimestamps())
		} else {
			// A key has no validity period: the time only serves the
			// transparency-log check, which needs none.
			opts = append(opts, verify.WithTransparencyLog(1), verify.WithCurrentTime())
		}
		policy = append(policy, verify.WithKey())
	default:
		if s.fulcio {
			tm = v.trustedRoot
		} else {
			tm = s.mat
		}
		entity = withContent{SignedEntity: c.entity, vc: certContent{leaf: c.cert, intermediates: c.intermediates}}
		switch {
		case !v.ignoreTlog:
			opts = append(opts, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
			s.when = "when it was logged"
		case len(c.timestamps) > 0 && len(tm.TimestampingAuthorities()) > 0:
			opts = append(opts, verify.WithSignedTimestamps(1))
			s.when = "at its RFC 3161 timestamp"
		default:
			// Without a log entry or a timestamp, nothing says when the
			// signature was made: the certificate must be valid now.
			opts = append(opts, verify.WithCurrentTime())
			s.when = "now (no transparency-log entry or timestamp says when it signed)"
		}
		if s.fulcio && !v.ignoreSCT {
			opts = append(opts, verify.WithSignedCertificateTimestamps(1))
		}
		for _, id := range v.identities {
			policy = append(policy, verify.WithCertificateIdentity(id))
		}
	}
	sv, err := verify.NewVerifier(tm, opts...)
	if err != nil {
		return failedAt(stageSigstore, "cannot set up verification: "+err.Error()), false
	}
	if _, err := sv.Verify(entity, verify.NewPolicy(c.artifact, policy...)); err != nil {
		return v.explain(err, s), false
	}
	return finding{}, true
}

// explain turns an error of sigstore-go's Verify into a reason. The
// prefixes are sigstore-go v1.3.0's (pkg/verify/signed_entity.go).
func (v *Verifier) explain(err error, s *signer) finding {
	msg := err.Error()
	cut := func(prefix string) (string, bool) {
		rest, ok := strings.CutPrefix(msg, prefix)
		return rest, ok
	}
	if rest, ok := cut("failed to verify log inclusion: "); ok {
		if strings.Contains(rest, "not enough verified log entries") {
			return failedAt(stageTlog, "transparency-log evidence does not verify: no entry from a Rekor log in the trusted root verifies ("+rest+")")
		}
		return failedAt(stageTlog, "transparency-log evidence does not verify: "+rest)
	}
	if rest, ok := cut("failed to verify timestamps: "); ok {
		return failedAt(stageSigstore, "no trusted time for the signature: "+rest)
	}
	if rest, ok := cut("failed to verify leaf certificate: "); ok {
		return failedAt(stageSigstore, fmt.Sprintf("certificate (%s) does not chain to a trusted CA %s: %s", certText(*s.cert), s.when, rest))
	}
	if rest, ok := cut("failed to verify signed certificate timestamp: "); ok {
		return failedAt(stageSigstore, "missing certificate-transparency evidence: the certificate has no SCT that the trusted root's CT logs verify ("+rest+"); ignoreSCTUnsafe accepts that")
	}
	if _, ok := cut("failed to verify certificate identity: "); ok {
		got := fmt.Sprintf("issuer %s subject %s", orNone(s.cert.Issuer), orNone(s.cert.SubjectAlternativeName))
		if v.extensions {
			e := s.cert.Extensions
			got += extensionsText(certificate.Extensions{SourceRepositoryURI: orNone(e.SourceRepositoryURI), SourceRepositoryRef: orNone(e.SourceRepositoryRef), RunnerEnvironment: orNone(e.RunnerEnvironment), BuildSignerURI: orNone(e.BuildSignerURI)})
		}
		return failedAt(stageIdentity, fmt.Sprintf("identity mismatch (want %s, got %s)", v.wantID, got))
	}
	if rest, ok := cut("failed to verify signature: "); ok {
		return failedAt(stageSigstore, "bad signature: "+rest)
	}
	return failedAt(stageSigstore, "verification failed: "+msg)
}

// checkSubject checks that the signed payload names the subject.
func checkSubject(req *vouch.VerifyRequest, c *candidate) (finding, bool) {
	want := req.Subject.Digest.String()
	switch {
	case c.simple != nil:
		if got := c.simple.Critical.Image.DockerManifestDigest; got != want {
			return failedAt(stageDigest, fmt.Sprintf("bad payload digest (signs %s, subject is %s)", got, want)), false
		}
	case c.stmt != nil:
		if !c.stmt.names(want) {
			got := c.stmt.subjectDigests()
			if len(got) > 4 {
				got = append(got[:4], fmt.Sprintf("and %d more", len(got)-4))
			}
			signs := strings.Join(got, ", ")
			if signs == "" {
				signs = "no subject"
			}
			return failedAt(stageDigest, fmt.Sprintf("bad payload digest (signs %s, subject is %s)", signs, want)), false
		}
	default:
		if got := "sha256:" + hex.EncodeToString(c.msgDigest); got != want {
			return failedAt(stageDigest, fmt.Sprintf("bad payload digest (signs %s, subject is %s)", got, want)), false
		}
	}
	return finding{}, true
}

// checkContent checks annotations of signatures and predicates of
// attestations.
func (v *Verifier) checkContent(c *candidate) (finding, bool) {
	if c.isAttestation() {
		if reason := v.att.check(c.stmt); reason != "" {
			return failedAt(stageContent, reason), false
		}
		return finding{}, true
	}
	for _, k := range slices.Sorted(maps.Keys(v.annotations)) {
		want := v.annotations[k]
		if c.simple == nil {
			return failedAt(stageContent, fmt.Sprintf("annotation %s is missing, want %s: a Sigstore-bundle signature carries no annotations", k, want)), false
		}
		got, ok := c.simple.Optional[k]
		if !ok {
			return failedAt(stageContent, fmt.Sprintf("annotation %s is missing, want %s", k, want)), false
		}
		if text := annotationText(got); text != want {
			return failedAt(stageContent, fmt.Sprintf("annotation %s is %s, want %s", k, text, want)), false
		}
	}
	return finding{}, true
}

// passed describes a verified signature.
func (v *Verifier) passed(c *candidate, s *signer) finding {
	d := map[string]any{}
	var by string
	if s.key != nil {
		by = "key " + s.key.name + " (" + s.key.fingerprint + ")"
		d["key"], d["keyFingerprint"] = s.key.name, s.key.fingerprint
	} else {
		by = s.cert.SubjectAlternativeName + " (issuer " + orNone(s.cert.Issuer) + ")"
		d["subject"], d["issuer"], d["certificateIssuer"] = s.cert.SubjectAlternativeName, s.cert.Issuer, s.cert.CertificateIssuer
		if s.fulcio {
			d["trust"] = "trustedRoot"
		} else {
			d["trust"] = "certificateRoots"
		}
	}
	var logged string
	if v.ignoreTlog {
		logged = "transparency log not checked (ignoreTlogUnsafe)"
		d["tlog"] = "not checked"
	} else {
		e := c.entries[0]
		logged = fmt.Sprintf("in Rekor at log index %d", e.LogIndex())
		t := map[string]any{"logIndex": e.LogIndex()}
		if it := e.IntegratedTime(); !it.IsZero() {
			t["integratedTime"] = it.UTC().Format(time.RFC3339)
		}
		d["tlog"] = t
	}
	reason := "signed by " + by + "; " + logged
	switch {
	case c.isAttestation():
		reason = fmt.Sprintf("attestation %s signed by %s; %s", c.stmt.PredicateType, by, logged)
		if len(c.stmtBytes) > MaxStatementDetailBytes {
			d["statementOmitted"] = fmt.Sprintf("the statement is %d bytes, over the %d kept in reports", len(c.stmtBytes), MaxStatementDetailBytes)
		} else {
			var st any
			if err := json.Unmarshal(c.stmtBytes, &st); err == nil {
				d["statement"] = st
			}
		}
	case c.simple != nil:
		d["payloadDigest"] = c.simple.Critical.Image.DockerManifestDigest
		if ref := c.simple.Critical.Identity.DockerReference; ref != "" {
			d["dockerReference"] = ref
		}
		if len(c.simple.Optional) > 0 {
			d["annotations"] = c.simple.Optional
		}
	}
	return finding{outcome: vouch.Passed, stage: stagePassed, reason: reason, details: d}
}

// summarize turns the findings on a manifest's signatures into its result.
func summarize(fs []finding) vouch.Result {
	var best *finding
	var failed, skipped []finding
	for i := range fs {
		f := &fs[i]
		switch f.outcome {
		case vouch.Passed:
			if best == nil || best.outcome != vouch.Passed {
				best = f
			}
		case vouch.Failed:
			failed = append(failed, *f)
			if best == nil || (best.outcome == vouch.Failed && f.stage > best.stage) || best.outcome == vouch.Skipped {
				best = f
			}
		case vouch.Skipped:
			skipped = append(skipped, *f)
			if best == nil {
				best = f
			}
		}
	}
	r := vouch.Result{Outcome: best.outcome, Reason: best.reason, Details: best.details, Claims: claims(fs)}
	if r.Details == nil {
		r.Details = map[string]any{}
	}
	r.Details["signatures"] = len(fs)
	if len(fs) > 1 {
		r.Details["layer"] = best.layer
		switch {
		case best.outcome == vouch.Passed:
			r.Reason += fmt.Sprintf(" (signature %d of %d)", best.layer+1, len(fs))
		case best.outcome == vouch.Failed && len(failed) > 1:
			r.Reason += fmt.Sprintf(" (and %d other signatures failed)", len(failed)-1)
		case best.outcome == vouch.Skipped && len(skipped) > 1:
			r.Reason += fmt.Sprintf(" (and %d other attestations skipped)", len(skipped)-1)
		}
	}
	if best.outcome == vouch.Failed && len(failed) > 1 {
		var reasons []string
		for _, f := range failed {
			if len(reasons) == 10 {
				break
			}
			reasons = append(reasons, f.reason)
		}
		r.Details["failures"] = reasons
	}
	return r
}

// claims sums up the findings by what their layers claim: for each kind and
// predicate type, in the order the layers first claim it, passed when one
// of its layers passed, else the failure that got furthest, else skipped.
// Layers that could not be read far enough to tell what they claim are
// left out.
func claims(fs []finding) []vouch.Claim {
	type key struct {
		kind vouch.ClaimKind
		pt   string
	}
	var order []key
	best := map[key]*finding{}
	level := map[key]int{}
	for i := range fs {
		f := &fs[i]
		if f.kind == "" {
			continue
		}
		k := key{f.kind, f.predicateType}
		level[k] = max(level[k], f.level)
		b, ok := best[k]
		if !ok {
			order = append(order, k)
			best[k] = f
			continue
		}
		switch {
		case b.outcome == vouch.Passed:
		case f.outcome == vouch.Passed,
			f.outcome == vouch.Failed && (b.outcome != vouch.Failed || f.stage > b.stage):
			best[k] = f
		}
	}
	out := make([]vouch.Claim, 0, len(order))
	for _, k := range order {
		b := best[k]
		out = append(out, vouch.Claim{Kind: k.kind, PredicateType: k.pt, Outcome: b.outcome, Reason: b.reason, SLSABuildLevel: level[k]})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
