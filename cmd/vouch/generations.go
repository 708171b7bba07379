package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/reload"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/trust"
)

// generations builds the configurations `vouch serve` serves from the
// flags and the files they name: the Fingerprint and Build of a
// reload.Poll. Builds run one at a time (First, then the Poll's loop).
type generations struct {
	fs      *pflag.FlagSet
	gf      *graphFlags // as parsed; each build applies the config to a copy
	vf      *verifierFlags
	metrics *server.Metrics

	// store is reused while the registry settings stay the same, with its
	// caches; storeKey names those settings.
	store    *registry.Store
	storeKey string
}

// poll returns the Source of the files' configurations.
func (b *generations) poll(sf *serveFlags, logger *slog.Logger) *reload.Poll {
	return &reload.Poll{Interval: sf.reloadInterval, Fingerprint: b.fingerprint, Build: b.build, Logger: logger}
}

// fingerprint hashes the config file's bytes (whether it parses or not),
// the trust files it names when it parses, and the quick flags' trust
// files: every file build reads that decides verdicts. With the content it
// hashes where each path leads and that file's size and modification
// time, so that a file replaced and replaced back during one build (the
// kubelet writes each version in a new folder) still changes the
// fingerprint, and the Poll builds again.
func (b *generations) fingerprint() (string, error) {
	fp := trust.NewFingerprinter()
	var paths []string
	if p := b.vf.configPath; p != "" {
		paths = append(paths, p)
		if cfg, err := config.Load(p); err == nil {
			paths = append(paths, cfg.TrustFiles()...)
		}
	}
	paths = append(paths, b.vf.quick().TrustFiles()...)
	if b.vf.vault != nil {
		// Refreshed key-vault material (a rotated key) builds again.
		fp.Add("key-vault", b.vf.vault.Fingerprint())
	}
	for _, p := range paths {
		if err := fp.Path(p); err != nil {
			return "", err
		}
		if fi, err := os.Stat(p); err == nil {
			real, _ := filepath.EvalSymlinks(p)
			fp.Add("stat", fmt.Sprintf("%s %d %d", real, fi.Size(), fi.ModTime().UnixNano()))
		}
	}
	return fp.Sum(), nil
}

// build reads the config file and the trust material, and builds the
// verifiers, the policy, the executors of every namespace and the hash
// their verdicts are cached under.
func (b *generations) build(ctx context.Context) (*reload.Generation, error) {
	gf := *b.gf
	cfg, err := loadConfig(b.fs, &gf, b.vf)
	if err != nil {
		return nil, err
	}
	verifiers, pol, err := b.vf.build(ctx, cfg)
	if err != nil {
		return nil, err
	}
	configHash := ""
	if cfg != nil {
		if configHash, err = cfg.Fingerprint(); err != nil {
			return nil, &exitError{code: exitUndecided, err: fmt.Errorf("config %s: %w", b.vf.configPath, err)}
		}
	}
	g, err := b.generation(&gf, nil, verifiers, pol, configHash, func(names []string) engine.NamespaceOptions {
		return engine.NamespaceOptions{NamespacePolicy: cfg.NamespacePolicies(names)}
	})
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	return g, nil
}

// buildComposition builds the generation of a ClusterVouchConfig's spec
// composed with the tenants' VouchConfigs (the Kubernetes source's
// Snapshot): comp holds the verifiers and policy built from them, and
// what each namespace adds; r reads the cluster's references (its pull
// Secret, dockerConfigRef); fingerprint hashes the cluster's spec and
// every value it references (each namespace's tenants are hashed in
// comp.Namespace's fingerprint). Errors name the field after "spec.", for
// the resource's status.
func (b *generations) buildComposition(spec *config.Spec, comp *config.Composition, r trust.Resolver, fingerprint string) (*reload.Generation, error) {
	gf := *b.gf
	gf.applyConfig(b.fs, spec)
	if err := gf.validate(); err != nil {
		return nil, err
	}
	creds, err := spec.RegistryCredentials(r, "spec.")
	if err != nil {
		return nil, err
	}
	namespace := func(ns string) (*engine.Namespace, error) {
		n, err := comp.Namespace(ns)
		if n == nil || err != nil {
			return nil, err
		}
		timed := make([]vouch.Verifier, len(n.Verifiers))
		for i, v := range n.Verifiers {
			timed[i] = b.metrics.Verifier(v)
		}
		return &engine.Namespace{Policy: n.Policy, Verifiers: timed, Fingerprint: n.Fingerprint}, nil
	}
	return b.generation(&gf, creds, comp.Verifiers, comp.Policy, "kubernetes:"+fingerprint, func([]string) engine.NamespaceOptions {
		return engine.NamespaceOptions{Namespace: namespace}
	})
}

// generation builds the executors of every namespace for verifiers and
// pol, under the registry settings and limits of gf and the registry
// credentials creds (a ClusterVouchConfig's dockerConfigRef), and the hash
// their verdicts are cached under (configHash identifies the configuration
// and its trust material, the credentials' Secret included). namespaces
// returns the NamespacePolicy or the Namespace hook of
// engine.NamespaceOptions, given the verifiers' names.
func (b *generations) generation(gf *graphFlags, creds map[string]auth.Credential, verifiers []vouch.Verifier, pol vouch.Policy, configHash string,
	namespaces func(names []string) engine.NamespaceOptions) (*reload.Generation, error) {
	hash, err := verdictFingerprint(gf, b.vf, configHash)
	if err != nil {
		return nil, err
	}
	st, err := b.registryStore(gf, creds)
	if err != nil {
		return nil, err
	}
	timed := make([]vouch.Verifier, len(verifiers))
	names := make([]string, len(verifiers))
	for i, v := range verifiers {
		timed[i], names[i] = b.metrics.Verifier(v), v.Name()
	}
	opts := namespaces(names)
	opts.Base, opts.Policy, opts.PolicyHash = *gf.executor(st, timed, nil), pol, hash
	executors, err := engine.NewNamespaceExecutors(opts)
	if err != nil {
		return nil, err
	}
	return &reload.Generation{Executors: executors, PolicyHash: hash, Verifiers: names}, nil
}

// registryStore returns the registry store for gf's settings and creds:
// the previous build's while they are the same. Changed credentials make
// a new store: its token caches and cached content start empty.
func (b *generations) registryStore(gf *graphFlags, creds map[string]auth.Credential) (*registry.Store, error) {
	opts := gf.registryOptions()
	opts.Credentials = creds
	opts.Targets = serveTargets(gf, creds)
	key := fmt.Sprintf("%v %q %q %+v %s %q", opts.PlainHTTP, opts.InsecureRegistries, opts.DockerConfig, opts.Limits, registry.CredentialsID(creds), opts.Targets.Allow)
	if b.store != nil && key == b.storeKey {
		return b.store, nil
	}
	opts.OnResponse = b.metrics.RegistryResponse
	st, err := registry.New(opts)
	if err != nil {
		return nil, err
	}
	b.store, b.storeKey = st, key
	return st, nil
}

// first builds the first generation; an error is the command's.
func (b *generations) first(ctx context.Context, p *reload.Poll) (*reload.Generation, error) {
	g, err := p.First(ctx)
	var ee *exitError
	if err != nil && !errors.As(err, &ee) {
		err = &exitError{code: exitUndecided, err: err}
	}
	return g, err
}

// watch runs src until ctx ends (nil: no reload); the returned function
// waits for it to end.
func watch(ctx context.Context, src reload.Source, h *reload.Holder) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if src != nil {
			_ = src.Start(ctx, h)
		}
	}()
	return func() { <-done }
}
