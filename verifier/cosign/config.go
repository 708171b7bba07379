package cosign

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"

	"github.com/vouch-project/vouch/trust"
)

// Config is the `cosign:` section of a verifier in vouch's config file. It
// says whom to trust (public keys, certificate roots, keyless identities
// under a Sigstore trusted root), which transparency evidence is required,
// and which attestations to accept.
//
// +kubebuilder:object:generate=true
type Config struct {
	// Keys are trusted public keys in PEM ("PUBLIC KEY" blocks: ECDSA, RSA
	// or Ed25519), such as the cosign.pub that `cosign generate-key-pair`
	// writes: what `cosign verify --key` trusts. Optional; at least one of
	// keys, certificateRoots and trustedRoot is required.
	Keys PEMSource `json:"keys,omitempty"`
	// CertificateRoots are CA certificates (PEM) that a signature's
	// certificate must chain to, through the intermediates in its
	// dev.sigstore.cosign/chain annotation or bundle: what `cosign verify
	// --certificate-chain` trusts. Certificates must allow code signing.
	// Optional; needs identities.
	CertificateRoots PEMSource `json:"certificateRoots,omitempty"`
	// Identities are the certificate identities accepted: a certificate must
	// match one of them (its OIDC issuer and its subject, from the Fulcio
	// extensions and the subject alternative name). Required with
	// certificateRoots, and with trustedRoot when no keys are configured;
	// with keys and trustedRoot alone, the trusted root serves only the
	// transparency log and certificates are not trusted.
	Identities []Identity `json:"identities,omitempty"`
	// TrustedRoot is the path of a Sigstore trusted_root.json (Fulcio CAs,
	// Rekor and CT log keys, timestamp authorities), read once, offline:
	// `cosign trusted-root create`, or the one in Sigstore's TUF repository.
	// Required unless ignoreTlogUnsafe is set (or trustedRootRef in a
	// custom resource). Config file only.
	TrustedRoot string `json:"trustedRoot,omitempty"`
	// TrustedRootRef is a Secret or ConfigMap key holding the
	// trusted_root.json: TrustedRoot in a custom resource. Optional.
	TrustedRootRef *trust.Ref `json:"trustedRootRef,omitempty"`
	// TrustedRootJSON is the trusted root's content, when vouch's config
	// package has read it from TrustedRootRef. Not read from the config.
	// Optional; when set, TrustedRoot is not read.
	TrustedRootJSON []byte `json:"-"`
	// IgnoreTlogUnsafe accepts signatures without transparency-log (Rekor)
	// evidence, as `cosign verify --insecure-ignore-tlog` does: for private
	// setups that sign with `--tlog-upload=false`. A signature that was never
	// logged cannot be audited, and a certificate's validity is then checked
	// at the current time. Optional; default false.
	IgnoreTlogUnsafe bool `json:"ignoreTlogUnsafe,omitempty"`
	// IgnoreSCTUnsafe accepts Fulcio certificates without a verified
	// certificate-transparency SCT, as `cosign verify
	// --insecure-ignore-sct` does. Applies only with trustedRoot. Optional;
	// default false.
	IgnoreSCTUnsafe bool `json:"ignoreSCTUnsafe,omitempty"`
	// Annotations must all be present, with these values, in the "optional"
	// section of a signature's simple-signing payload (`cosign sign -a
	// key=value`; `cosign verify -a key=value`). Sigstore-bundle signatures
	// carry no annotations and fail when any are required. Optional.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Attestations turns on the checking of in-toto attestations (`cosign
	// attest`) and says which are accepted. Without it, attestations are
	// not checked: cosign's .att manifests are left to other verifiers and
	// attestation bundles are skipped. Optional.
	Attestations *Attestations `json:"attestations,omitempty"`
}

// PEMSource is PEM material from files, inline, or both.
//
// +kubebuilder:object:generate=true
type PEMSource struct {
	// Files are PEM files; in the config file, relative to its folder.
	// Optional; config file only.
	Files []string `json:"files,omitempty"`
	// Refs are Secret or ConfigMap keys holding PEM. Optional; custom
	// resources only. The cosign verifier does not read them: vouch's
	// config package reads them into PEM before it builds the verifier.
	Refs []trust.Ref `json:"refs,omitempty"`
	// PEM holds PEM blocks inline. Optional.
	PEM string `json:"pem,omitempty"`
	// KMS are cosign KMS key URIs, as `cosign verify --key` takes them:
	// awskms:///alias/NAME, gcpkms://projects/…/cryptoKeys/KEY,
	// azurekms://VAULT.vault.azure.net/KEY, hashivault://KEY. vouch fetches
	// each key's public key when it starts and refreshes it
	// (docs/key-management.md). Optional; keys only; config file only;
	// needs a vouch built with -tags kms (the container image is). The
	// cosign verifier does not fetch them: vouch's config package hands it
	// their PEM (KMSPEM).
	KMS []string `json:"kms,omitempty"`
	// KMSPEM holds the PEM public key of each of KMS, in order, as fetched;
	// "" for a key the service no longer has (trusted no more). Messages
	// and reports name each key by its URI. Not read from the config.
	// Optional.
	KMSPEM []string `json:"-"`
	// RefsPEM holds the PEM of each of Refs, in order, when vouch's config
	// package has read them; messages and reports name each by its
	// reference ("secret vouch/cosign-pub key cosign.pub"). Not read from
	// the config. Optional.
	RefsPEM []string `json:"-"`
	// Names, when set, are how messages and reports name Files, one per
	// file: the paths as the config file writes them, before they were
	// resolved. Not read from the config file. Optional; default Files.
	Names []string `json:"-"`
}

// name is how messages name file i.
func (s PEMSource) name(i int) string {
	if i < len(s.Names) && s.Names[i] != "" {
		return s.Names[i]
	}
	return s.Files[i]
}

func (s PEMSource) empty() bool {
	return len(s.Files) == 0 && len(s.Refs) == 0 && strings.TrimSpace(s.PEM) == "" && len(s.KMS) == 0
}

// hasTrustedRoot reports whether c names a trusted root in any form.
func (c *Config) hasTrustedRoot() bool {
	return c.TrustedRoot != "" || c.TrustedRootRef != nil || len(c.TrustedRootJSON) > 0
}

// Identity is a certificate identity: an OIDC issuer and a subject (an
// email, a URI such as a GitHub workflow), each exact or a regular
// expression, like cosign's --certificate-oidc-issuer(-regexp) and
// --certificate-identity(-regexp). Regular expressions use Go syntax and,
// as in cosign, are not anchored: write ^…$ to match the whole value.
//
// +kubebuilder:object:generate=true
type Identity struct {
	// Issuer is the exact OIDC issuer. One of issuer and issuerRegExp is
	// required.
	Issuer string `json:"issuer,omitempty"`
	// IssuerRegExp matches the OIDC issuer. Certificates from CAs other
	// than Fulcio carry no issuer: match them with issuerRegExp ".*".
	IssuerRegExp string `json:"issuerRegExp,omitempty"`
	// Subject is the exact subject. One of subject and subjectRegExp is
	// required.
	Subject string `json:"subject,omitempty"`
	// SubjectRegExp matches the subject.
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
	// SourceRepositoryURI, when set, must equal the certificate's Fulcio
	// extension of that name (1.3.6.1.4.1.57264.1.12), such as
	// https://github.com/acme/app: the repository a GitHub Actions workflow
	// ran in. Optional.
	SourceRepositoryURI string `json:"sourceRepositoryURI,omitempty"`
	// SourceRepositoryRef, when set, must equal the certificate's source
	// repository ref (1.3.6.1.4.1.57264.1.14), such as refs/tags/v1.2.0.
	// Optional.
	SourceRepositoryRef string `json:"sourceRepositoryRef,omitempty"`
	// RunnerEnvironment, when set, must equal the certificate's runner
	// environment (1.3.6.1.4.1.57264.1.11): github-hosted or self-hosted.
	// Optional.
	RunnerEnvironment string `json:"runnerEnvironment,omitempty"`
	// BuildSignerURI, when set, must equal the certificate's build signer
	// URI (1.3.6.1.4.1.57264.1.9): the workflow file at a ref, for a
	// reusable workflow the called one. Optional.
	BuildSignerURI string `json:"buildSignerURI,omitempty"`
}

// extensions are the Fulcio extensions id requires.
func (id Identity) extensions() certificate.Extensions {
	return certificate.Extensions{SourceRepositoryURI: id.SourceRepositoryURI, SourceRepositoryRef: id.SourceRepositoryRef, RunnerEnvironment: id.RunnerEnvironment, BuildSignerURI: id.BuildSignerURI}
}

// Attestations says which in-toto attestations are accepted and what their
// predicates must hold. An attestation whose predicate type is not accepted
// is skipped, not failed: like `cosign verify-attestation --type`, the
// verifier looks only at the types it is asked about.
//
// +kubebuilder:object:generate=true
type Attestations struct {
	// PredicateTypes lists the accepted predicate types: URIs, or cosign's
	// --type names (slsaprovenance, slsaprovenance02, slsaprovenance1,
	// spdx, spdxjson, cyclonedx, vuln, openvex, link, custom). Optional;
	// with neither predicateTypes nor predicates, every type is accepted.
	PredicateTypes []string `json:"predicateTypes,omitempty"`
	// Fields are checked on the predicate of every accepted attestation:
	// dotted paths into the predicate JSON ("builder.id",
	// "materials.0.uri") and the exact value each must have. Optional.
	Fields map[string]string `json:"fields,omitempty"`
	// FieldsRegExp are like fields, with regular expressions (Go syntax,
	// not anchored) that the values must match. Optional.
	FieldsRegExp map[string]string `json:"fieldsRegExp,omitempty"`
	// Predicates holds checks for one predicate type each; their types are
	// accepted too. Optional.
	Predicates []Predicate `json:"predicates,omitempty"`
	// Provenance checks SLSA provenance (v0.2 and v1) by what it says,
	// whichever version wrote it; both predicate types are accepted too.
	// Optional.
	Provenance *Provenance `json:"provenance,omitempty"`
}

// Provenance checks what an SLSA provenance says about the build, read from
// the fields each version keeps it in (https://slsa.dev/spec/v1.0/provenance,
// https://slsa.dev/provenance/v0.2): the builder, the build type, and the
// source repository and ref. Every field set must hold. Repositories compare
// without a "git+" prefix or a ".git" suffix.
//
// +kubebuilder:object:generate=true
type Provenance struct {
	// BuilderIDs are the accepted builder ids, exact (v1
	// runDetails.builder.id, v0.2 builder.id). Optional.
	BuilderIDs []string `json:"builderIDs,omitempty"`
	// BuilderIDRegExp matches the builder id (Go syntax, not anchored).
	// Optional; with builderIDs, either may match.
	BuilderIDRegExp string `json:"builderIDRegExp,omitempty"`
	// BuildTypes are the accepted build types, exact (v1
	// buildDefinition.buildType, v0.2 buildType). Optional.
	BuildTypes []string `json:"buildTypes,omitempty"`
	// SourceRepository is the source repository, exact, such as
	// https://github.com/acme/app (v1: the GitHub Actions build type's
	// externalParameters.workflow.repository, else the first resolved
	// dependency's URI; v0.2: invocation.configSource.uri, else the first
	// material's). Optional.
	SourceRepository string `json:"sourceRepository,omitempty"`
	// SourceRepositoryRegExp matches the source repository. Optional.
	SourceRepositoryRegExp string `json:"sourceRepositoryRegExp,omitempty"`
	// SourceRefs are the accepted source refs, exact, such as
	// refs/heads/main (v1: externalParameters.workflow.ref, else the part
	// after "@" of the resolved dependency's URI; v0.2: after "@" of the
	// configSource or material URI). Optional.
	SourceRefs []string `json:"sourceRefs,omitempty"`
	// SourceRefRegExp matches the source ref. Optional.
	SourceRefRegExp string `json:"sourceRefRegExp,omitempty"`
	// HardenedBuilders are the builder ids trusted as SLSA Build level 3
	// builders (hosted, isolated, their signing keys out of the build's
	// reach): a signed provenance from one of them shows level 3, from any
	// other at most level 2. Optional.
	HardenedBuilders []string `json:"hardenedBuilders,omitempty"`
}

// Predicate checks the predicates of one type.
//
// +kubebuilder:object:generate=true
type Predicate struct {
	// Type is the predicate type: a URI or a cosign --type name. Required.
	Type string `json:"type"`
	// Fields are dotted paths and exact values, as in Attestations.Fields.
	// Optional.
	Fields map[string]string `json:"fields,omitempty"`
	// FieldsRegExp are dotted paths and regular expressions. Optional.
	FieldsRegExp map[string]string `json:"fieldsRegExp,omitempty"`
}

// Predicate types of attestations that cosign makes, and their names for
// `cosign attest --type`.
const (
	PredicateSLSAv02   = "https://slsa.dev/provenance/v0.2"
	PredicateSLSAv1    = "https://slsa.dev/provenance/v1"
	PredicateSPDX      = "https://spdx.dev/Document"
	PredicateCycloneDX = "https://cyclonedx.org/bom"
	PredicateVuln      = "https://cosign.sigstore.dev/attestation/vuln/v1"
	PredicateCustom    = "https://cosign.sigstore.dev/attestation/v1"
	PredicateOpenVEX   = "https://openvex.dev/ns"
	PredicateLink      = "https://in-toto.io/Link/v1"
	// PredicateCosignSign is the predicate type of the statement that
	// `cosign sign --new-bundle-format` (cosign v3's default) signs in a
	// Sigstore bundle: a signature of its subject, not an attestation.
	PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"
)

// predicateNames maps cosign's --type names to predicate types, as cosign
// 2.x's options.PredicateTypeMap does.
var predicateNames = map[string]string{
	"custom":           PredicateCustom,
	"slsaprovenance":   PredicateSLSAv02,
	"slsaprovenance02": PredicateSLSAv02,
	"slsaprovenance1":  PredicateSLSAv1,
	"spdx":             PredicateSPDX,
	"spdxjson":         PredicateSPDX,
	"cyclonedx":        PredicateCycloneDX,
	"link":             PredicateLink,
	"vuln":             PredicateVuln,
	"openvex":          PredicateOpenVEX,
}

// PredicateType returns the predicate type that name stands for: the URI of
// a cosign --type name, or name itself when it is a URI.
func PredicateType(name string) (string, error) {
	if uri, ok := predicateNames[name]; ok {
		return uri, nil
	}
	if u, err := url.ParseRequestURI(name); err != nil || u.Scheme == "" {
		return "", fmt.Errorf("%q is neither a URI nor a cosign --type name (%s)", name, strings.Join(slices.Sorted(maps.Keys(predicateNames)), ", "))
	}
	return name, nil
}

// KeyConfig is the configuration behind the CLI's quick flag --cosign-key:
// trust these public key files, and nothing else. It ignores the
// transparency log (IgnoreTlogUnsafe), because the common local case is
// `cosign sign --key … --tlog-upload=false`; the verifier says so in every
// reason it gives. Attestations are not checked. For keyless signatures,
// Rekor evidence or attestations, write a config file.
func KeyConfig(keyFiles []string) Config {
	return Config{Keys: PEMSource{Files: slices.Clone(keyFiles)}, IgnoreTlogUnsafe: true}
}

// Validate checks c without reading the files it names; errors name the
// field by its path below prefix, such as prefix+".identities[0].issuer".
func (c *Config) Validate(prefix string) error {
	if c.Keys.empty() && c.CertificateRoots.empty() && !c.hasTrustedRoot() {
		return fmt.Errorf("%s: nothing to trust: set keys, certificateRoots or trustedRoot", prefix)
	}
	if err := c.Keys.validate(prefix + ".keys"); err != nil {
		return err
	}
	if err := c.CertificateRoots.validate(prefix + ".certificateRoots"); err != nil {
		return err
	}
	if len(c.CertificateRoots.KMS) > 0 {
		return fmt.Errorf("%s.certificateRoots.kms: KMS URIs name keys; move them to keys.kms", prefix)
	}
	certs := !c.CertificateRoots.empty() || (c.hasTrustedRoot() && c.Keys.empty())
	switch {
	case certs && len(c.Identities) == 0:
		return fmt.Errorf("%s.identities: required to trust certificates (keyless signatures): name the OIDC issuer and subject of the signers", prefix)
	case len(c.Identities) > 0 && c.CertificateRoots.empty() && !c.hasTrustedRoot():
		return fmt.Errorf("%s.identities: certificates need certificateRoots or trustedRoot to be checked against", prefix)
	}
	for i, id := range c.Identities {
		if err := id.validate(fmt.Sprintf("%s.identities[%d]", prefix, i)); err != nil {
			return err
		}
	}
	if !c.hasTrustedRoot() && !c.IgnoreTlogUnsafe {
		return fmt.Errorf("%s.trustedRoot: required to check transparency-log (Rekor) evidence; for signatures made with --tlog-upload=false set ignoreTlogUnsafe: true", prefix)
	}
	if c.IgnoreSCTUnsafe && (!c.hasTrustedRoot() || len(c.Identities) == 0) {
		return fmt.Errorf("%s.ignoreSCTUnsafe: applies only to keyless signatures checked against trustedRoot", prefix)
	}
	for k := range c.Annotations {
		if k == "" {
			return fmt.Errorf("%s.annotations: empty key", prefix)
		}
	}
	if c.Attestations != nil {
		if err := c.Attestations.validate(prefix + ".attestations"); err != nil {
			return err
		}
	}
	return nil
}

func (s PEMSource) validate(path string) error {
	for i, f := range s.Files {
		if strings.TrimSpace(f) == "" {
			return fmt.Errorf("%s.files[%d]: empty path", path, i)
		}
		if trust.IsKMSKey(f) {
			return fmt.Errorf("%s.files[%d]: %q is a KMS key URI; name it in %s.kms", path, i, f, path)
		}
	}
	for i, u := range s.KMS {
		if err := trust.ValidateKMSKey(fmt.Sprintf("%s.kms[%d]", path, i), u); err != nil {
			return err
		}
	}
	return nil
}

func (id Identity) validate(path string) error {
	if id.Issuer == "" && id.IssuerRegExp == "" {
		return fmt.Errorf("%s: needs issuer or issuerRegExp", path)
	}
	if id.Subject == "" && id.SubjectRegExp == "" {
		return fmt.Errorf("%s: needs subject or subjectRegExp", path)
	}
	if _, err := regexp.Compile(id.IssuerRegExp); err != nil {
		return fmt.Errorf("%s.issuerRegExp: %w", path, err)
	}
	if _, err := regexp.Compile(id.SubjectRegExp); err != nil {
		return fmt.Errorf("%s.subjectRegExp: %w", path, err)
	}
	return nil
}

func (a *Attestations) validate(path string) error {
	for i, t := range a.PredicateTypes {
		if _, err := PredicateType(t); err != nil {
			return fmt.Errorf("%s.predicateTypes[%d]: %w", path, i, err)
		}
	}
	if err := validateFields(path, a.Fields, a.FieldsRegExp); err != nil {
		return err
	}
	if pr := a.Provenance; pr != nil {
		for name, re := range map[string]string{"builderIDRegExp": pr.BuilderIDRegExp, "sourceRepositoryRegExp": pr.SourceRepositoryRegExp, "sourceRefRegExp": pr.SourceRefRegExp} {
			if _, err := regexp.Compile(re); err != nil {
				return fmt.Errorf("%s.provenance.%s: %w", path, name, err)
			}
		}
		if len(pr.BuilderIDs) == 0 && pr.BuilderIDRegExp == "" && len(pr.BuildTypes) == 0 && pr.SourceRepository == "" && pr.SourceRepositoryRegExp == "" && len(pr.SourceRefs) == 0 && pr.SourceRefRegExp == "" && len(pr.HardenedBuilders) == 0 {
			return fmt.Errorf("%s.provenance: names nothing to check (builderIDs, builderIDRegExp, buildTypes, sourceRepository(RegExp), sourceRefs, sourceRefRegExp, hardenedBuilders)", path)
		}
	}
	seen := map[string]bool{}
	for i, p := range a.Predicates {
		pp := fmt.Sprintf("%s.predicates[%d]", path, i)
		if p.Type == "" {
			return fmt.Errorf("%s.type: required", pp)
		}
		uri, err := PredicateType(p.Type)
		if err != nil {
			return fmt.Errorf("%s.type: %w", pp, err)
		}
		if seen[uri] {
			return fmt.Errorf("%s.type: %s is checked twice; merge the two entries", pp, uri)
		}
		seen[uri] = true
		if err := validateFields(pp, p.Fields, p.FieldsRegExp); err != nil {
			return err
		}
	}
	return nil
}

func validateFields(path string, exact, re map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(exact)) {
		if err := validatePath(k); err != nil {
			return fmt.Errorf("%s.fields[%q]: %w", path, k, err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(re)) {
		if err := validatePath(k); err != nil {
			return fmt.Errorf("%s.fieldsRegExp[%q]: %w", path, k, err)
		}
		if _, err := regexp.Compile(re[k]); err != nil {
			return fmt.Errorf("%s.fieldsRegExp[%q]: %w", path, k, err)
		}
	}
	return nil
}

func validatePath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return errors.New("empty segment in dotted path")
		}
	}
	return nil
}
