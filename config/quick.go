package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/cosign"
	"github.com/vouch-project/vouch/verifier/notation"
)

// QuickStore names the trust store that Quick.NotationCerts fill.
const QuickStore = "vouch-cli"

// Quick is the configuration of the CLI's quick flags: verifiers that need
// no config file. Paths are read as given, relative to the working
// directory.
type Quick struct {
	// NotationCerts are certificate files, PEM or DER (a CA or signing
	// certificate), trusted for Notary Project signatures
	// (--notation-cert). Without NotationTrustPolicy they are trusted for
	// every repository (notation.QuickTrustPolicy); with it, they join every
	// ca and signingAuthority store it names. Optional.
	NotationCerts []string
	// NotationTrustPolicy is a Notation trust policy file
	// (--notation-trust-policy). Optional.
	NotationTrustPolicy string
	// NotationConfigDir is the Notation configuration folder whose trust
	// stores NotationTrustPolicy names (--notation-config-dir). Optional;
	// default DefaultNotationDir().
	NotationConfigDir string
	// CosignKeys are cosign public key files (--cosign-key), trusted as
	// cosign.KeyConfig says, or KMS key URIs (awskms://…, as cosign's
	// --key takes them), read through Vault. Optional.
	CosignKeys []string
	// Vault hands out the public keys of the KMS key URIs in CosignKeys
	// (VaultURIs). Optional; without it such a key is an error
	// (trust.ErrNoVault).
	Vault trust.Vault
	// Namespace applies the config file's policy as in this Kubernetes
	// namespace (--namespace): its scopes naming the namespace, and those
	// naming none (policy.InNamespace). Optional; default none.
	Namespace string
}

// notationDir is NotationConfigDir or its default.
func (q Quick) notationDir() string {
	if q.NotationConfigDir != "" {
		return q.NotationConfigDir
	}
	return DefaultNotationDir()
}

// TrustFiles lists the files and folders whose content the quick verifiers
// read: certificates, keys, the trust policy and, with it, the trust store
// folder of the Notation configuration.
func (q Quick) TrustFiles() []string {
	var keyFiles []string
	for _, k := range q.CosignKeys {
		if !trust.IsKMSKey(k) {
			keyFiles = append(keyFiles, k)
		}
	}
	files := slices.Concat(q.NotationCerts, keyFiles)
	if q.NotationTrustPolicy != "" {
		files = append(files, q.NotationTrustPolicy, filepath.Join(q.notationDir(), "truststore"))
	}
	return files
}

// Build returns the verifiers and the policy of the config file f (nil for
// none) and of q. The quick verifiers are named "notation" and "cosign", or
// "notation-cli" and "cosign-cli" when f has a verifier of that name. The
// policy is f's policy section when it has one (it may name the quick
// verifiers); otherwise the default policy over every verifier.
func Build(f *File, q Quick) ([]vouch.Verifier, vouch.Policy, error) {
	var verifiers []vouch.Verifier
	var pol vouch.Policy
	if f != nil {
		var err error
		if verifiers, pol, err = f.Build(); err != nil {
			return nil, nil, err
		}
	}
	if q.Namespace != "" && (f == nil || f.Policy == nil) {
		return nil, nil, fmt.Errorf("--namespace %s: only a config file's policy section has namespaced scopes", q.Namespace)
	}
	var quick []vouch.Verifier
	n, err := q.notation(verifiers)
	if err != nil {
		return nil, nil, err
	}
	if n != nil {
		quick = append(quick, n)
	}
	c, err := q.cosign(verifiers)
	if err != nil {
		return nil, nil, err
	}
	if c != nil {
		quick = append(quick, c)
	}
	if len(quick) > 0 {
		verifiers = append(verifiers, quick...)
		if f == nil || f.Policy == nil {
			pol = nil
		}
	}
	if f != nil && f.Policy != nil && q.Namespace != "" {
		// The config's policy stands, as in the namespace.
		names := make([]string, 0, len(verifiers))
		for _, v := range verifiers {
			names = append(names, v.Name())
		}
		if pol, err = policy.New(*f.Policy, names, policy.InNamespace(q.Namespace)); err != nil {
			return nil, nil, err
		}
		return verifiers, pol, nil
	}
	if pol == nil {
		names := make([]string, 0, len(verifiers))
		for _, v := range verifiers {
			names = append(names, v.Name())
		}
		pol = policy.Default(names)
	}
	return verifiers, pol, nil
}

// quickName is name, or name-cli when a configured verifier has it.
func quickName(name string, existing []vouch.Verifier) string {
	if slices.ContainsFunc(existing, func(v vouch.Verifier) bool { return v.Name() == name }) {
		return name + "-cli"
	}
	return name
}

// cosign builds the cosign verifier of CosignKeys, or nil.
func (q Quick) cosign(existing []vouch.Verifier) (vouch.Verifier, error) {
	if len(q.CosignKeys) == 0 {
		return nil, nil
	}
	var files []string
	c := cosign.KeyConfig(nil)
	for _, k := range q.CosignKeys {
		if !trust.IsKMSKey(k) {
			files = append(files, k)
			continue
		}
		if q.Vault == nil {
			return nil, fmt.Errorf("--cosign-key %s: %w", k, trust.ErrNoVault)
		}
		data, err := q.Vault.Material(k, cosign.MaxTrustFileBytes)
		if err != nil {
			return nil, fmt.Errorf("--cosign-key %s: %w", k, err)
		}
		c.Keys.KMS, c.Keys.KMSPEM = append(c.Keys.KMS, k), append(c.Keys.KMSPEM, string(data))
	}
	c.Keys.Files = files
	v, err := cosign.New(quickName("cosign", existing), c)
	if err != nil {
		return nil, fmt.Errorf("--cosign-key: %w", err)
	}
	return v, nil
}

// VaultURIs lists the KMS key URIs among CosignKeys.
func (q Quick) VaultURIs() []string {
	var out []string
	for _, k := range q.CosignKeys {
		if trust.IsKMSKey(k) {
			out = append(out, k)
		}
	}
	return out
}

// notation builds the notation verifier of the Notation fields, or nil.
func (q Quick) notation(existing []vouch.Verifier) (vouch.Verifier, error) {
	if len(q.NotationCerts) == 0 && q.NotationTrustPolicy == "" {
		return nil, nil
	}
	opts := notation.Options{Name: quickName("notation", existing)}
	if q.NotationTrustPolicy == "" {
		opts.TrustPolicy = notation.QuickTrustPolicy(QuickStore)
		opts.TrustStores.Files = map[string][]string{
			"ca:" + QuickStore:               q.NotationCerts,
			"signingAuthority:" + QuickStore: q.NotationCerts,
		}
	} else {
		doc, err := notation.LoadTrustPolicy(q.NotationTrustPolicy)
		if err != nil {
			return nil, err
		}
		opts.TrustPolicy = doc
		opts.TrustStores.Dir = q.notationDir()
		// Certificates given on the command line join every CA and
		// signing-authority store the policy names.
		opts.TrustStores.Files = map[string][]string{}
		for _, st := range doc.TrustPolicies {
			for _, store := range st.TrustStores {
				if len(q.NotationCerts) > 0 && (strings.HasPrefix(store, "ca:") || strings.HasPrefix(store, "signingAuthority:")) {
					opts.TrustStores.Files[store] = q.NotationCerts
				}
			}
		}
	}
	v, err := notation.New(opts)
	if err != nil {
		return nil, fmt.Errorf("--notation-cert/--notation-trust-policy: %w", err)
	}
	return v, nil
}

// DefaultNotationDir is where notation keeps its configuration:
// $XDG_CONFIG_HOME/notation, else ~/.config/notation ("" when there is no
// home folder).
func DefaultNotationDir() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "notation")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".config", "notation")
}
