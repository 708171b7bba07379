// Package notation verifies Notary Project signatures (JWS and COSE
// envelopes) attached to OCI artifacts as referrers, with notation-go: the
// trust policy document and trust stores that notation reads, RFC 3161
// timestamp countersignatures, revocation by OCSP and CRL, and the
// verification plugins that signatures name (Plugins).
//
// The checks and their order are notation's, from the Notary Project
// specification's "Signature verification" section:
// https://github.com/notaryproject/specifications/blob/v1.1.0/specs/trust-store-trust-policy.md#signature-verification
//
// Which trust policy statement applies is decided by registry scope, as
// notation does, from the artifact reference
//
//	REGISTRY/REPOSITORY@DIGEST
//
// where REGISTRY/REPOSITORY is the repository of the subject the user named
// and DIGEST is the digest of the node the signature signs (the image, or for
// a nested signature the SBOM or report it signs). Subjects in OCI image
// layouts have no registry: they are matched as Options.LayoutScope, which
// plays the part of `notation verify --oci-layout --scope`.
package notation

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	notationgo "github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	"github.com/notaryproject/notation-plugin-framework-go/plugin"
	"github.com/notaryproject/tspclient-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/mod/semver"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/untrusted"
)

// ArtifactType is the artifact type of a Notary Project signature manifest.
const ArtifactType = registry.ArtifactTypeNotation

// Envelope media types: the media type of a signature manifest's one layer.
const (
	// MediaTypeJWS is a JWS envelope (JSON serialization).
	MediaTypeJWS = jws.MediaTypeEnvelope
	// MediaTypeCOSE is a COSE_Sign1 envelope.
	MediaTypeCOSE = cose.MediaTypeEnvelope
)

// DefaultName is the verifier's name in reports when Options.Name is empty.
const DefaultName = "notation"

// DefaultLayoutScope is the registry scope that subjects in OCI image
// layouts are matched as when Options.LayoutScope is empty.
const DefaultLayoutScope = "local/oci-layout"

// MaxEnvelopeBytes bounds a signature envelope, as notation-go bounds the
// signature blobs it fetches (32 MiB).
const MaxEnvelopeBytes = 32 << 20

// Options configures a Verifier.
type Options struct {
	// Name identifies the verifier in reports. Optional; default "notation".
	Name string
	// TrustPolicy is Notation's trust policy document, as notation reads it
	// from trustpolicy.json (LoadTrustPolicy) or built in code
	// (QuickTrustPolicy): version "1.0", statements with registryScopes,
	// signatureVerification (level strict, permissive, audit or skip, with
	// overrides and verifyTimestamp), trustStores ("ca:NAME",
	// "signingAuthority:NAME", "tsa:NAME") and trustedIdentities. New copies
	// it. Required.
	TrustPolicy *trustpolicy.Document
	// TrustStores holds the certificates of the stores that the policy
	// names. Required: every store a statement names must hold at least one
	// certificate.
	TrustStores TrustStores
	// Revocation configures OCSP and CRL checking.
	Revocation Revocation
	// LayoutScope is the registry scope ("host/path") that subjects in OCI
	// image layouts are matched as, like `notation verify --oci-layout
	// --scope`: a statement with this scope, else one with "*", applies.
	// Optional; default "local/oci-layout".
	LayoutScope string
	// Plugins configures the verification plugins that signatures may
	// name. Optional; default none: such signatures are errored.
	Plugins Plugins
}

// Verifier verifies Notary Project signatures with notation-go. It is safe
// for concurrent use.
type Verifier struct {
	name         string
	policy       *trustpolicy.Document
	layout       string
	nv           notationgo.Verifier
	pluginConfig map[string]string
}

// New checks opts and builds a Verifier: the policy must validate, every
// trust store it names must exist and hold certificates, and every store
// configured must be named by some statement. Trust stores are read once,
// here; build a new Verifier to pick up changed certificates.
func New(opts Options) (*Verifier, error) {
	if opts.TrustPolicy == nil {
		return nil, errors.New("notation: Options.TrustPolicy is required")
	}
	policy := clonePolicy(opts.TrustPolicy)
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("notation: trust policy: %w", err)
	}
	stores, err := loadTrustStores(opts.TrustStores)
	if err != nil {
		return nil, fmt.Errorf("notation: %w", err)
	}
	if err := stores.checkAgainst(policy, opts.TrustStores.Dir, opts.TrustStores.Emptied); err != nil {
		return nil, fmt.Errorf("notation: %w", err)
	}
	layout := opts.LayoutScope
	if layout == "" {
		layout = DefaultLayoutScope
	}
	if err := validateScope(layout); err != nil {
		return nil, fmt.Errorf("notation: Options.LayoutScope: %w", err)
	}
	validators, err := opts.Revocation.validators(stores.all())
	if err != nil {
		return nil, fmt.Errorf("notation: %w", err)
	}
	if opts.Revocation.DisableUnsafe {
		skipRevocation(policy)
	}
	plugins, err := newPluginManager(opts.Plugins)
	if err != nil {
		return nil, fmt.Errorf("notation: %w", err)
	}
	nv, err := verifier.NewWithOptions(policy, stores, plugins, verifier.VerifierOptions{
		RevocationCodeSigningValidator:  validators.codeSigning,
		RevocationTimestampingValidator: validators.timestamping,
	})
	if err != nil {
		return nil, fmt.Errorf("notation: %w", err)
	}
	name := opts.Name
	if name == "" {
		name = DefaultName
	}
	return &Verifier{name: name, policy: policy, layout: layout, nv: nv, pluginConfig: maps.Clone(opts.Plugins.Config)}, nil
}

// Name returns the verifier's name in reports.
func (v *Verifier) Name() string { return v.name }

// Handles reports whether artifactType is a Notary Project signature's.
func (v *Verifier) Handles(artifactType string) bool { return artifactType == ArtifactType }

// Verify checks one signature manifest, req.Artifact, against the trust
// policy: its envelope is fetched through req.Repository and verified as a
// signature of req.Subject.
//
// Outcomes: Passed when notation accepts the signature, with what it logged
// only (levels permissive and audit) in the reason and Details; Failed with
// the check that failed (or the verification plugin that rejected the
// signature); Skipped when the applicable statement's level is skip;
// Errored when notation cannot decide: a revocation status that cannot be
// obtained while revocation is enforced, or a verification plugin that the
// signature names and that is not configured, not installed, older than
// the signature asks, or that fails, hangs or answers garbage (Plugins). An
// error is returned when the envelope cannot be fetched.
func (v *Verifier) Verify(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
	layers := req.Manifest.Layers
	if len(layers) != 1 {
		return vouch.Fail(fmt.Sprintf("malformed signature manifest: a Notary Project signature has exactly one layer, the envelope; this one has %d", len(layers)), nil), nil
	}
	env := layers[0]
	if env.MediaType != MediaTypeJWS && env.MediaType != MediaTypeCOSE {
		return vouch.Fail(fmt.Sprintf("unsupported envelope media type %q (notation signs %s or %s)", env.MediaType, MediaTypeJWS, MediaTypeCOSE), nil), nil
	}
	if env.Size > MaxEnvelopeBytes {
		return vouch.Fail(fmt.Sprintf("signature envelope is %d bytes, over the %d that notation accepts", env.Size, MaxEnvelopeBytes), nil), nil
	}
	blob, err := req.Repository.Fetch(ctx, env)
	if err != nil {
		return vouch.Result{}, fmt.Errorf("fetch signature envelope %s: %w", env.Digest, err)
	}

	scope := v.scope(req.Reference)
	ref := scope + "@" + req.Subject.Digest.String()
	statement, _ := v.policy.GetApplicableTrustPolicy(ref)
	rec := &recorder{}
	outcome, err := v.nv.Verify(withRecorder(ctx, rec), req.Subject, blob, notationgo.VerifierVerifyOptions{
		ArtifactReference:  ref,
		SignatureMediaType: env.MediaType,
		PluginConfig:       v.pluginConfig,
	})
	if ctx.Err() != nil {
		return vouch.Result{}, ctx.Err()
	}
	var noPolicy notationgo.ErrorNoApplicableTrustPolicy
	if errors.As(err, &noPolicy) || statement == nil {
		return vouch.Fail(fmt.Sprintf("no trust policy applies to %s: no statement has it, or \"*\", in its registryScopes", scope), map[string]any{"artifactReference": ref}), nil
	}
	if outcome == nil {
		return vouch.Result{}, fmt.Errorf("notation returned no outcome: %w", err)
	}
	c := &check{req: req, env: env, ref: ref, statement: statement, outcome: outcome, err: err, rec: rec}
	return c.result(), nil
}

// scope is the registry scope a subject is matched as.
func (v *Verifier) scope(ref vouch.Reference) string {
	if ref.IsLayout() {
		return v.layout
	}
	return ref.Registry + "/" + ref.Repository
}

// check maps one notation outcome to a vouch result.
type check struct {
	req       *vouch.VerifyRequest
	env       ocispec.Descriptor
	ref       string
	statement *trustpolicy.TrustPolicy
	outcome   *notationgo.VerificationOutcome
	err       error
	rec       *recorder
}

func (c *check) result() vouch.Result {
	details := c.details()
	level := c.outcome.VerificationLevel
	if level != nil && level.Name == trustpolicy.LevelSkip.Name {
		return vouch.Result{Outcome: vouch.Skipped, Reason: fmt.Sprintf("trust policy statement %q skips signature verification (level skip)", c.statement.Name), Details: details}
	}
	logged := c.logged()
	if len(logged) > 0 {
		details["loggedFailures"] = logged
		if c.statement.SignatureVerification.VerificationLevel == trustpolicy.LevelAudit.Name {
			details["audit"] = true
		}
	}
	if c.err == nil {
		reason := fmt.Sprintf("signed by %q, trusted by statement %q (level %s)", details["signer"], c.statement.Name, c.levelText())
		if len(logged) > 0 {
			reason = fmt.Sprintf("logged only, not enforced (level %s): %s; the signature passed the enforced checks", c.levelText(), strings.Join(logged, "; "))
		}
		return vouch.Pass(reason, details)
	}
	if err := c.rec.pluginState().err; err != nil {
		// Found before or after notation's own checks, a plugin that
		// cannot be run is what stopped verification.
		return vouch.Result{Outcome: vouch.Errored, Reason: "the signature requires " + err.Error(), Details: details}
	}
	for _, r := range c.outcome.VerificationResults {
		if r.Error != nil && r.Action == trustpolicy.ActionEnforce {
			details["check"] = string(r.Type)
			outcome, reason := c.explain(r)
			return vouch.Result{Outcome: outcome, Reason: reason, Details: details}
		}
	}
	var inconclusive notationgo.ErrorVerificationInconclusive
	if errors.As(c.err, &inconclusive) {
		if plugin := c.plugin(); plugin != "" {
			version, minVersion := c.rec.pluginState().version, c.pluginMinVersion()
			if version != "" && minVersion != "" && semver.IsValid("v"+version) && semver.Compare("v"+version, "v"+minVersion) < 0 {
				return vouch.Result{Outcome: vouch.Errored, Reason: fmt.Sprintf("the signature requires verification plugin %q version %s or later; the installed one is version %s", plugin, minVersion, version), Details: details}
			}
			return vouch.Result{Outcome: vouch.Errored, Reason: fmt.Sprintf("notation could not use verification plugin %q, which the signature requires: %s", plugin, untrusted.Text(inconclusive.Error(), 1024)), Details: details}
		}
		return vouch.Result{Outcome: vouch.Errored, Reason: "notation could not decide: " + inconclusive.Error(), Details: details}
	}
	if target, ok := c.target(); ok && target.Digest != c.req.Subject.Digest {
		details["check"] = string(trustpolicy.TypeIntegrity)
		return vouch.Fail(fmt.Sprintf("signature is for another artifact (digest mismatch): it signs %s, but is attached to %s", target.Digest, c.req.Subject.Digest), details)
	} else if ok && (target.MediaType != c.req.Subject.MediaType || target.Size != c.req.Subject.Size) {
		details["check"] = string(trustpolicy.TypeIntegrity)
		return vouch.Fail(fmt.Sprintf("signature is for another descriptor of %s: it signs media type %q and size %d, the subject has %q and %d", target.Digest, target.MediaType, target.Size, c.req.Subject.MediaType, c.req.Subject.Size), details)
	}
	return vouch.Fail("signature verification failed: "+c.err.Error(), details)
}

// explain names the enforced check that failed.
func (c *check) explain(r *notationgo.ValidationResult) (vouch.Outcome, string) {
	err := r.Error
	var inconclusive notationgo.ErrorVerificationInconclusive
	var storeErr truststore.TrustStoreError
	var certErr truststore.CertificateError
	if errors.As(err, &inconclusive) || errors.As(err, &storeErr) || errors.As(err, &certErr) {
		return vouch.Errored, fmt.Sprintf("notation could not check %s: %v", r.Type, err)
	}
	if res := c.pluginResult(r.Type); res != nil && !res.Success {
		what := "rejected the signer's identity"
		if r.Type == trustpolicy.TypeRevocation {
			what = "failed the revocation check"
		}
		return vouch.Failed, fmt.Sprintf("verification plugin %q %s: %s", c.plugin(), what, untrusted.Text(res.Reason, maxPluginReason))
	}
	switch r.Type {
	case trustpolicy.TypeIntegrity:
		return vouch.Failed, "signature integrity check failed: " + err.Error()
	case trustpolicy.TypeAuthenticity:
		var authErr *signature.SignatureAuthenticityError
		if errors.As(err, &authErr) {
			return vouch.Failed, fmt.Sprintf("untrusted signer: the certificate chain of %q (issued by %q) does not include a certificate from trust stores %s, named by trust policy statement %q; to trust it, add its CA to one of them", c.signer(), c.issuer(), strings.Join(c.statement.TrustStores, ", "), c.statement.Name)
		}
		return vouch.Failed, fmt.Sprintf("signer identity not trusted: %q matches none of the trustedIdentities of statement %q (%s)", c.signer(), c.statement.Name, strings.Join(c.statement.TrustedIdentities, "; "))
	case trustpolicy.TypeExpiry:
		return vouch.Failed, "signature expired: " + err.Error()
	case trustpolicy.TypeAuthenticTimestamp:
		if res := c.rec.timestamping; res.err != nil || len(res.results) > 0 {
			if res.revoked() {
				return vouch.Failed, "timestamping certificate revoked: " + err.Error()
			}
			if res.err != nil || !res.ok() {
				return vouch.Errored, fmt.Sprintf("revocation status of the timestamping certificate unknown (%s): %v%s", res.problems(), err, c.undecided(r))
			}
		}
		now := time.Now()
		for _, cert := range c.chain() {
			if now.After(cert.NotAfter) {
				why := "the signature has no timestamp countersignature to show it was made while the certificate was valid"
				switch {
				case c.hasTimestamp() && !c.hasTSAStore():
					why = fmt.Sprintf("the signature carries a timestamp, but trust policy statement %q names no tsa trust store to verify it", c.statement.Name)
				case c.hasTimestamp():
					why = "its timestamp countersignature did not verify"
				}
				return vouch.Failed, fmt.Sprintf("certificate expired: %q expired at %s; %s (notation: %v)", cert.Subject, cert.NotAfter.UTC().Format(time.RFC3339), why, err)
			}
			if now.Before(cert.NotBefore) {
				return vouch.Failed, fmt.Sprintf("certificate not yet valid: %q is valid from %s (%v)", cert.Subject, cert.NotBefore.UTC().Format(time.RFC3339), err)
			}
		}
		return vouch.Failed, "timestamp check failed: " + err.Error()
	case trustpolicy.TypeRevocation:
		if c.rec.codeSigning.revoked() {
			return vouch.Failed, "certificate revoked: " + err.Error()
		}
		if errors.Is(c.rec.codeSigning.err, errUntrustedChain) {
			return vouch.Errored, "revocation status unknown: " + errUntrustedChain.Error() + c.undecided(r)
		}
		return vouch.Errored, fmt.Sprintf("revocation status unknown (%s): %v%s", c.rec.codeSigning.problems(), err, c.undecided(r))
	}
	return vouch.Failed, fmt.Sprintf("%s check failed: %v", r.Type, err)
}

// undecided explains, for an enforced check that could not complete, why
// the result is an error rather than a failure.
func (c *check) undecided(r *notationgo.ValidationResult) string {
	if r.Action != trustpolicy.ActionEnforce {
		return ""
	}
	return fmt.Sprintf("; level %s enforces %s, so notation fails the signature when the check cannot complete; vouch reports that it cannot decide", c.levelText(), r.Type)
}

// logged lists the failures that the level only logs.
func (c *check) logged() []string {
	var out []string
	for _, r := range c.outcome.VerificationResults {
		if r.Error != nil && r.Action == trustpolicy.ActionLog {
			_, reason := c.explain(r)
			out = append(out, reason)
		}
	}
	return out
}

// details collects what the envelope says, for reports and Rego.
func (c *check) details() map[string]any {
	d := map[string]any{
		"artifactReference": c.ref,
		"trustPolicy":       c.statement.Name,
		"level":             c.statement.SignatureVerification.VerificationLevel,
		"envelope":          envelopeName(c.env.MediaType),
	}
	if o := c.statement.SignatureVerification.Override; len(o) > 0 {
		override := make(map[string]any, len(o))
		for k, v := range o {
			override[string(k)] = string(v)
		}
		d["override"] = override
	}
	content := c.outcome.EnvelopeContent
	if content == nil {
		return d
	}
	info := content.SignerInfo
	d["signingScheme"] = string(info.SignedAttributes.SigningScheme)
	if chain := c.chain(); len(chain) > 0 {
		d["signer"] = chain[0].Subject.String()
		d["issuer"] = chain[0].Issuer.String()
		d["certificateNotAfter"] = chain[0].NotAfter.UTC().Format(time.RFC3339)
		subjects := make([]string, len(chain))
		for i, cert := range chain {
			subjects[i] = cert.Subject.String()
		}
		d["chain"] = subjects
	}
	if t := info.SignedAttributes.SigningTime; !t.IsZero() {
		d["signingTime"] = t.UTC().Format(time.RFC3339)
	}
	if t := info.SignedAttributes.Expiry; !t.IsZero() {
		d["expiry"] = t.UTC().Format(time.RFC3339)
	}
	if target, ok := c.target(); ok {
		d["signedDigest"] = target.Digest.String()
	}
	if name := c.plugin(); name != "" {
		d["verificationPlugin"] = name
		if version := c.rec.pluginState().version; version != "" {
			d["verificationPluginVersion"] = version
		}
	}
	if ts := info.UnsignedAttributes.TimestampSignature; len(ts) > 0 {
		if token, err := tspclient.ParseSignedToken(ts); err == nil {
			if tst, err := token.Info(); err == nil {
				d["timestamp"] = tst.GenTime.UTC().Format(time.RFC3339)
			}
			if len(token.SignerInfos) > 0 {
				if cert, err := token.SigningCertificate(&token.SignerInfos[0]); err == nil {
					d["timestampAuthority"] = cert.Subject.String()
				}
			}
		}
		d["timestampVerified"] = c.timestampVerified()
	}
	return d
}

// timestampVerified tells whether notation checked the countersignature
// against a tsa trust store, and it passed.
func (c *check) timestampVerified() bool {
	if !c.hasTSAStore() {
		return false
	}
	if c.statement.SignatureVerification.VerifyTimestamp == trustpolicy.OptionAfterCertExpiry {
		expired := false
		for _, cert := range c.chain() {
			expired = expired || time.Now().After(cert.NotAfter)
		}
		if !expired {
			return false
		}
	}
	for _, r := range c.outcome.VerificationResults {
		if r.Type == trustpolicy.TypeAuthenticTimestamp {
			return r.Error == nil
		}
	}
	return false
}

// hasTSAStore tells whether the statement names a tsa trust store, without
// which notation does not verify timestamps.
func (c *check) hasTSAStore() bool {
	for _, s := range c.statement.TrustStores {
		if strings.HasPrefix(s, string(truststore.TypeTSA)+":") {
			return true
		}
	}
	return false
}

func (c *check) hasTimestamp() bool {
	return c.outcome.EnvelopeContent != nil && len(c.outcome.EnvelopeContent.SignerInfo.UnsignedAttributes.TimestampSignature) > 0
}

// plugin names the verification plugin the signature asks for, if any.
// The signer chose it: it is cut for reports.
func (c *check) plugin() string {
	return untrusted.Text(c.attribute(verifier.HeaderVerificationPlugin), 256)
}

// pluginMinVersion is the plugin version the signature asks for, if any.
func (c *check) pluginMinVersion() string {
	return untrusted.Text(c.attribute(verifier.HeaderVerificationPluginMinVersion), 64)
}

// attribute is a string-valued extended signed attribute of the envelope.
func (c *check) attribute(key string) string {
	if c.outcome.EnvelopeContent == nil {
		return ""
	}
	attr, err := c.outcome.EnvelopeContent.SignerInfo.ExtendedAttribute(key)
	if err != nil {
		return ""
	}
	value, _ := attr.Value.(string)
	return value
}

// pluginResult is the verification plugin's answer for the capability
// that takes over check t, if the plugin answered for it.
func (c *check) pluginResult(t trustpolicy.ValidationType) *plugin.VerificationResult {
	capability := plugin.CapabilityTrustedIdentityVerifier
	if t == trustpolicy.TypeRevocation {
		capability = plugin.CapabilityRevocationCheckVerifier
	} else if t != trustpolicy.TypeAuthenticity {
		return nil
	}
	return c.rec.pluginState().results[capability]
}

func (c *check) chain() []*x509.Certificate {
	if c.outcome.EnvelopeContent == nil {
		return nil
	}
	return c.outcome.EnvelopeContent.SignerInfo.CertificateChain
}

func (c *check) signer() string {
	if chain := c.chain(); len(chain) > 0 {
		return chain[0].Subject.String()
	}
	return "(unknown)"
}

func (c *check) issuer() string {
	if chain := c.chain(); len(chain) > 0 {
		return chain[0].Issuer.String()
	}
	return "(unknown)"
}

// target is the descriptor the signature's payload names, when the envelope
// was read.
func (c *check) target() (ocispec.Descriptor, bool) {
	if c.outcome.EnvelopeContent == nil {
		return ocispec.Descriptor{}, false
	}
	var payload struct {
		TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
	}
	if err := json.Unmarshal(c.outcome.EnvelopeContent.Payload.Content, &payload); err != nil || payload.TargetArtifact.Digest == "" {
		return ocispec.Descriptor{}, false
	}
	return payload.TargetArtifact, true
}

// levelText names the statement's verification level as its author wrote
// it, with its overrides ("strict, override expiry: log"): notation-go
// names every overridden level "custom".
func (c *check) levelText() string {
	sv := c.statement.SignatureVerification
	if len(sv.Override) == 0 {
		return sv.VerificationLevel
	}
	parts := make([]string, 0, len(sv.Override))
	for k, v := range sv.Override {
		parts = append(parts, fmt.Sprintf("%s: %s", k, v))
	}
	sort.Strings(parts)
	return sv.VerificationLevel + ", override " + strings.Join(parts, ", ")
}

func envelopeName(mediaType string) string {
	switch mediaType {
	case MediaTypeJWS:
		return "jws"
	case MediaTypeCOSE:
		return "cose"
	}
	return mediaType
}
