package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/trust"
)

// verifierFlags choose verifiers and policy: a config file, or quick flags
// that need none, or both (the quick flags add a verifier to the config's).
type verifierFlags struct {
	configPath          string
	notationCerts       []string
	notationTrustPolicy string
	notationConfigDir   string
	cosignKeys          []string
	namespace           string
	// keyRefresh is how often key-vault material is fetched again
	// (vouch serve's --key-refresh; default defaultKeyRefresh).
	keyRefresh time.Duration
	// vault holds the key-vault material of the config file; made by the
	// first build that needs it, kept by vouch serve across reloads.
	vault keyVault
	// logger logs failed refreshes of key-vault material (vouch serve's
	// logger). Optional; default slog.Default().
	logger *slog.Logger
}

func (f *verifierFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.configPath, "config", "c", "", "vouch config `FILE` (YAML or JSON): registries, limits, trust, verifiers, policy (see docs/configuration.md)")
	fs.StringArrayVar(&f.notationCerts, "notation-cert", nil, "trust this certificate `FILE` (PEM or DER; a CA or signing certificate) for Notary Project signatures (repeatable)")
	fs.StringVar(&f.notationTrustPolicy, "notation-trust-policy", "", "Notation trust policy `FILE` (trustpolicy.json), read as notation reads it")
	fs.StringArrayVar(&f.cosignKeys, "cosign-key", nil, "trust this cosign public key `FILE` (PEM, as `cosign generate-key-pair` writes), or KMS key URI (awskms://, gcpkms://, azurekms://, hashivault://; a vouch built with -tags kms), for cosign signatures; transparency-log evidence is not required (repeatable)")
	fs.StringVar(&f.notationConfigDir, "notation-config-dir", "", "Notation configuration `DIR` holding truststore/x509/...; default with --notation-trust-policy: $XDG_CONFIG_HOME/notation or ~/.config/notation")
}

// quick returns the quick flags as config takes them.
func (f *verifierFlags) quick() config.Quick {
	return config.Quick{
		NotationCerts:       f.notationCerts,
		NotationTrustPolicy: f.notationTrustPolicy,
		NotationConfigDir:   f.notationConfigDir,
		CosignKeys:          f.cosignKeys,
		Namespace:           f.namespace,
		Vault:               f.vaultOrNil(),
	}
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
func (f *verifierFlags) build(ctx context.Context, cfg *config.File) ([]vouch.Verifier, vouch.Policy, error) {
	if err := f.loadVault(ctx, cfg); err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: err}
	}
	verifiers, pol, err := config.Build(cfg, f.quick())
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: err}
	}
	return verifiers, pol, nil
}

// loadVault fetches the key-vault material cfg names (cosign KMS keys,
// Azure Key Vault certificates) into f.vault, unless held already, and
// hands it to cfg; material that cannot be fetched is an error naming it,
// and nothing is trusted without it (fail closed).
func (f *verifierFlags) loadVault(ctx context.Context, cfg *config.File) error {
	uris := f.quick().VaultURIs()
	if cfg != nil {
		uris = append(cfg.VaultURIs(), uris...)
	}
	if len(uris) == 0 && f.vault == nil {
		return nil
	}
	if f.vault == nil {
		refresh := f.keyRefresh
		if refresh == 0 {
			refresh = defaultKeyRefresh
		}
		logger := f.logger
		if logger == nil {
			logger = slog.Default()
		}
		v, err := newKeyVault(refresh, logger)
		if err != nil {
			return err
		}
		f.vault = v
	}
	if err := f.vault.Load(ctx, uris); err != nil {
		if f.configPath == "" {
			return fmt.Errorf("--cosign-key: %w", err)
		}
		return fmt.Errorf("config %s: key-vault material: %w", f.configPath, err)
	}
	if cfg != nil {
		cfg.Vault = f.vault
	}
	return nil
}

// vaultOrNil returns f.vault as a trust.Vault, nil when there is none
// (not a non-nil interface holding nil).
func (f *verifierFlags) vaultOrNil() trust.Vault {
	if f.vault == nil {
		return nil
	}
	return f.vault
}

// verdictFingerprint hashes everything verdicts depend on, so that cached
// verdicts (in Redis, shared by replicas and kept across restarts) are used
// only under the same policy and trust material: vouch's version, the
// configuration and its trust material (configHash: the config file's
// Fingerprint, or the Kubernetes source's), the quick flags' files, and
// the flags that change what is read.
func verdictFingerprint(gf *graphFlags, vf *verifierFlags, configHash string) (string, error) {
	fp := trust.NewFingerprinter()
	fp.Add("vouch", version)
	if configHash != "" {
		fp.Add("config", configHash)
	}
	for _, p := range vf.quick().TrustFiles() {
		if err := fp.Path(p); err != nil {
			return "", err
		}
	}
	// What changes what is read, hence verdicts.
	insecure := append([]string(nil), gf.insecure...)
	sort.Strings(insecure)
	fp.Add("registries", fmt.Sprintf("plainHTTP=%v insecure=%s", gf.plainHTTP, strings.Join(insecure, ",")))
	fp.Add("limits", fmt.Sprintf("%+v", gf.limits))
	return fp.Sum(), nil
}
