package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/verifier/cosign"
	"github.com/vouch-project/vouch/verifier/notation"
)

// quickStore names the trust store the quick flags fill.
const quickStore = "vouch-cli"

// verifierFlags choose verifiers and policy: a config file, or quick flags
// that need none, or both (the quick flags add a verifier to the config's).
type verifierFlags struct {
	configPath          string
	notationCerts       []string
	notationTrustPolicy string
	notationConfigDir   string
	cosignKeys          []string
}

func (f *verifierFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.configPath, "config", "c", "", "vouch config `FILE` (YAML or JSON): registries, limits, trust, verifiers, policy (see docs/configuration.md)")
	fs.StringArrayVar(&f.notationCerts, "notation-cert", nil, "trust this certificate `FILE` (PEM or DER; a CA or signing certificate) for Notary Project signatures (repeatable)")
	fs.StringVar(&f.notationTrustPolicy, "notation-trust-policy", "", "Notation trust policy `FILE` (trustpolicy.json), read as notation reads it")
	fs.StringArrayVar(&f.cosignKeys, "cosign-key", nil, "trust this cosign public key `FILE` (PEM, as `cosign generate-key-pair` writes) for cosign signatures; transparency-log evidence is not required (repeatable)")
	fs.StringVar(&f.notationConfigDir, "notation-config-dir", "", "Notation configuration `DIR` holding truststore/x509/...; default with --notation-trust-policy: $XDG_CONFIG_HOME/notation or ~/.config/notation")
}

// load reads the config file, if any.
func (f *verifierFlags) load() (*config.File, error) {
	if f.configPath == "" {
		return nil, nil
	}
	cfg, err := config.Load(f.configPath)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	return cfg, nil
}

// build returns the verifiers and the policy from the config file and the
// quick flags.
func (f *verifierFlags) build(cfg *config.File) ([]vouch.Verifier, vouch.Policy, error) {
	var verifiers []vouch.Verifier
	var pol vouch.Policy
	if cfg != nil {
		var err error
		if verifiers, pol, err = cfg.Build(); err != nil {
			return nil, nil, &exitError{code: exitUndecided, err: err}
		}
	}
	var quick []vouch.Verifier
	n, err := f.quickNotation(verifiers)
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: err}
	}
	if n != nil {
		quick = append(quick, n)
	}
	c, err := f.quickCosign(verifiers)
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: err}
	}
	if c != nil {
		quick = append(quick, c)
	}
	if len(quick) > 0 {
		verifiers = append(verifiers, quick...)
		if cfg != nil && cfg.Policy != nil {
			// The config's policy stands; it may name the quick verifiers.
			return verifiers, pol, nil
		}
		pol = nil
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

// quickCosign builds the cosign verifier of --cosign-key, or nil.
func (f *verifierFlags) quickCosign(existing []vouch.Verifier) (vouch.Verifier, error) {
	if len(f.cosignKeys) == 0 {
		return nil, nil
	}
	v, err := cosign.New(quickName("cosign", existing), cosign.KeyConfig(f.cosignKeys))
	if err != nil {
		return nil, fmt.Errorf("--cosign-key: %w", err)
	}
	return v, nil
}

// quickNotation builds the notation verifier of the quick flags, or nil.
func (f *verifierFlags) quickNotation(existing []vouch.Verifier) (vouch.Verifier, error) {
	if len(f.notationCerts) == 0 && f.notationTrustPolicy == "" {
		return nil, nil
	}
	opts := notation.Options{Name: quickName("notation", existing)}
	if f.notationTrustPolicy == "" {
		opts.TrustPolicy = notation.QuickTrustPolicy(quickStore)
		opts.TrustStores.Files = map[string][]string{
			"ca:" + quickStore:               f.notationCerts,
			"signingAuthority:" + quickStore: f.notationCerts,
		}
	} else {
		doc, err := notation.LoadTrustPolicy(f.notationTrustPolicy)
		if err != nil {
			return nil, err
		}
		opts.TrustPolicy = doc
		opts.TrustStores.Dir = f.notationConfigDir
		if opts.TrustStores.Dir == "" {
			opts.TrustStores.Dir = defaultNotationDir()
		}
		// Certificates given on the command line join every CA and
		// signing-authority store the policy names.
		opts.TrustStores.Files = map[string][]string{}
		for _, st := range doc.TrustPolicies {
			for _, store := range st.TrustStores {
				if len(f.notationCerts) > 0 && (strings.HasPrefix(store, "ca:") || strings.HasPrefix(store, "signingAuthority:")) {
					opts.TrustStores.Files[store] = f.notationCerts
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

// defaultNotationDir is where notation keeps its configuration.
func defaultNotationDir() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "notation")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".config", "notation")
}
