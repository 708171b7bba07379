package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

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
func (b *generations) build(context.Context) (*reload.Generation, error) {
	gf := *b.gf
	cfg, err := loadConfig(b.fs, &gf, b.vf)
	if err != nil {
		return nil, err
	}
	verifiers, pol, err := b.vf.build(cfg)
	if err != nil {
		return nil, err
	}
	hash, err := verdictFingerprint(&gf, b.vf, cfg)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	st, err := b.registryStore(&gf)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	timed := make([]vouch.Verifier, len(verifiers))
	names := make([]string, len(verifiers))
	for i, v := range verifiers {
		timed[i], names[i] = b.metrics.Verifier(v), v.Name()
	}
	executors, err := engine.NewNamespaceExecutors(engine.NamespaceOptions{Base: *gf.executor(st, timed, nil), Policy: pol, NamespacePolicy: cfg.NamespacePolicies(names), PolicyHash: hash})
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	return &reload.Generation{Executors: executors, PolicyHash: hash, Verifiers: names}, nil
}

// registryStore returns the registry store for gf's settings: the previous
// build's while they are the same.
func (b *generations) registryStore(gf *graphFlags) (*registry.Store, error) {
	opts := gf.registryOptions()
	key := fmt.Sprintf("%v %q %q %+v", opts.PlainHTTP, opts.InsecureRegistries, opts.DockerConfig, opts.Limits)
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

// watch runs p until ctx ends, unless interval is 0 (no reload); the
// returned function waits for it to end.
func watch(ctx context.Context, p *reload.Poll, h *reload.Holder) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if p.Interval > 0 {
			_ = p.Start(ctx, h)
		}
	}()
	return func() { <-done }
}
