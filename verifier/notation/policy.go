package notation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	"github.com/vouch-project/vouch/internal/untrusted"
)

// MaxTrustPolicyBytes bounds a trust policy document read by LoadTrustPolicy.
const MaxTrustPolicyBytes = 1 << 20

// QuickTrustPolicyName is the statement name of QuickTrustPolicy's document.
const QuickTrustPolicyName = "vouch-quick"

// LoadTrustPolicy reads a trust policy document (notation's
// trustpolicy.json) from path: at most MaxTrustPolicyBytes, strict JSON
// (unknown fields and trailing data are errors), validated by notation-go's
// rules for version "1.0".
func LoadTrustPolicy(path string) (*trustpolicy.Document, error) {
	data, err := untrusted.ReadFile(path, MaxTrustPolicyBytes)
	if err != nil {
		return nil, fmt.Errorf("trust policy: %w", err)
	}
	doc, err := parseTrustPolicy(data)
	if err != nil {
		return nil, fmt.Errorf("trust policy %s: %w", path, err)
	}
	return doc, nil
}

// ParseTrustPolicy decodes and validates a trust policy document read from
// elsewhere than a file (a Secret), at most MaxTrustPolicyBytes; errors
// name it by name.
func ParseTrustPolicy(data []byte, name string) (*trustpolicy.Document, error) {
	if len(data) > MaxTrustPolicyBytes {
		return nil, fmt.Errorf("trust policy %s: more than %d bytes", name, MaxTrustPolicyBytes)
	}
	doc, err := parseTrustPolicy(data)
	if err != nil {
		return nil, fmt.Errorf("trust policy %s: %w", name, err)
	}
	return doc, nil
}

// parseTrustPolicy decodes and validates a trust policy document.
func parseTrustPolicy(data []byte) (*trustpolicy.Document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc trustpolicy.Document
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("malformed JSON: data after the document")
	}
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	return &doc, nil
}

// QuickTrustPolicy returns the trust policy behind `vouch verify
// --notation-cert`: one statement for every repository (registryScopes
// "*"), level strict, trusting any identity whose chain includes a
// certificate of the named store of type ca or signingAuthority. Give the
// certificates to both stores, TrustStores.Files["ca:NAME"] and
// ["signingAuthority:NAME"], since New requires every named store to hold
// certificates.
func QuickTrustPolicy(storeName string) *trustpolicy.Document {
	return &trustpolicy.Document{
		Version: "1.0",
		TrustPolicies: []trustpolicy.TrustPolicy{{
			Name:                  QuickTrustPolicyName,
			RegistryScopes:        []string{"*"},
			SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: trustpolicy.LevelStrict.Name},
			TrustStores: []string{
				string(truststore.TypeCA) + ":" + storeName,
				string(truststore.TypeSigningAuthority) + ":" + storeName,
			},
			TrustedIdentities: []string{"*"},
		}},
	}
}

// clonePolicy deep-copies doc, so that later changes by the caller do not
// reach a Verifier.
func clonePolicy(doc *trustpolicy.Document) *trustpolicy.Document {
	out := &trustpolicy.Document{Version: doc.Version}
	for _, s := range doc.TrustPolicies {
		s.RegistryScopes = append([]string(nil), s.RegistryScopes...)
		s.TrustStores = append([]string(nil), s.TrustStores...)
		s.TrustedIdentities = append([]string(nil), s.TrustedIdentities...)
		s.SignatureVerification.Override = maps.Clone(s.SignatureVerification.Override)
		out.TrustPolicies = append(out.TrustPolicies, s)
	}
	return out
}

// skipRevocation overrides revocation to skip in every statement that
// verifies at all.
func skipRevocation(doc *trustpolicy.Document) {
	for i := range doc.TrustPolicies {
		sv := &doc.TrustPolicies[i].SignatureVerification
		if sv.VerificationLevel == trustpolicy.LevelSkip.Name {
			continue
		}
		if sv.Override == nil {
			sv.Override = map[trustpolicy.ValidationType]trustpolicy.ValidationAction{}
		}
		sv.Override[trustpolicy.TypeRevocation] = trustpolicy.ActionSkip
	}
}

// validateScope checks a registry scope with notation-go's own rules.
func validateScope(scope string) error {
	doc := &trustpolicy.Document{Version: "1.0", TrustPolicies: []trustpolicy.TrustPolicy{{
		Name:                  "scope",
		RegistryScopes:        []string{scope},
		SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: trustpolicy.LevelSkip.Name},
	}}}
	if scope == "*" {
		return errors.New(`"*" is not a scope an artifact can have`)
	}
	return doc.Validate()
}
