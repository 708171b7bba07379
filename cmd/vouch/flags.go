package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/store"
	"github.com/vouch-project/vouch/store/ocilayout"
	"github.com/vouch-project/vouch/store/registry"
)

// graphFlags are the flags every command that reads a graph shares: where
// and how to reach registries, and the limits on what is read.
type graphFlags struct {
	plainHTTP     bool
	insecure      []string
	dockerConfig  string
	username      string
	passwordStdin bool
	limits        vouch.Limits
	concurrency   int
	timeout       time.Duration
	// allowInternal (vouch serve's --allow-internal-registry) and named
	// (the registries the config names) are the internal registries vouch
	// serve may reach (serveTargets).
	allowInternal []string
	named         []string
}

func (f *graphFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.plainHTTP, "plain-http", false, "talk plain HTTP, not HTTPS, to every registry (insecure: for local test registries)")
	fs.StringArrayVar(&f.insecure, "insecure-registry", nil, "allow plain HTTP or unverified TLS for this registry `HOST[:PORT]` only (repeatable)")
	fs.StringVar(&f.dockerConfig, "registry-config", "", "Docker config.json `FILE` with credentials and credential helpers (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)")
	fs.StringVarP(&f.username, "username", "u", "", "registry user name, for the registries of the given subjects (use with --password-stdin)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password or identity token from standard input")
	fs.Int64Var(&f.limits.MaxManifestBytes, "max-manifest-bytes", vouch.DefaultMaxManifestBytes, "largest manifest or index read, in bytes")
	fs.Int64Var(&f.limits.MaxBlobBytes, "max-blob-bytes", vouch.DefaultMaxBlobBytes, "largest blob a verifier reads, in bytes")
	fs.IntVar(&f.limits.MaxReferrerPages, "max-referrer-pages", vouch.DefaultMaxReferrerPages, "most pages of one referrers listing")
	fs.IntVar(&f.limits.MaxDepth, "max-depth", vouch.DefaultMaxDepth, "deepest nesting of referrers below a subject")
	fs.IntVar(&f.limits.MaxNodes, "max-nodes", vouch.DefaultMaxNodes, "most nodes in one subject's graph")
	fs.IntVar(&f.concurrency, "concurrency", vouch.DefaultConcurrency, "registry reads and checks at once per subject (vouch verify checks four times as many subjects at once)")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up after this long (then exit 2)")
}

// validate checks the flag values that pflag cannot.
func (f *graphFlags) validate() error {
	l := f.limits
	if l.MaxManifestBytes <= 0 || l.MaxBlobBytes <= 0 || l.MaxReferrerPages <= 0 || l.MaxDepth <= 0 || l.MaxNodes <= 0 {
		return usageErrorf("every --max-* limit must be positive")
	}
	if f.concurrency <= 0 {
		return usageErrorf("--concurrency must be positive")
	}
	if f.timeout <= 0 {
		return usageErrorf("--timeout must be positive")
	}
	if f.username != "" && !f.passwordStdin {
		return usageErrorf("--username needs --password-stdin")
	}
	if f.passwordStdin && f.username == "" {
		return usageErrorf("--password-stdin needs --username")
	}
	return nil
}

// registryOptions returns the registry store's options from the flags.
func (f *graphFlags) registryOptions() registry.Options {
	return registry.Options{
		PlainHTTP:          f.plainHTTP,
		InsecureRegistries: f.insecure,
		DockerConfig:       f.dockerConfig,
		Limits:             f.limits,
	}
}

// store builds the store for refs: registries and OCI layouts.
func (f *graphFlags) store(stdin io.Reader, refs []vouch.Reference) (vouch.Store, error) {
	router := store.Router{Layout: ocilayout.New(f.limits)}
	needRegistry := false
	for _, r := range refs {
		needRegistry = needRegistry || !r.IsLayout()
	}
	if !needRegistry {
		return router, nil
	}
	opts := f.registryOptions()
	if f.passwordStdin {
		secret, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read password from standard input: %w", err)
		}
		secret = strings.TrimRight(secret, "\r\n")
		if secret == "" {
			return nil, usageErrorf("--password-stdin: standard input is empty")
		}
		opts.Credentials = map[string]auth.Credential{}
		for _, r := range refs {
			if !r.IsLayout() {
				opts.Credentials[r.Registry] = auth.Credential{Username: f.username, Password: secret}
			}
		}
	}
	reg, err := registry.New(opts)
	if err != nil {
		return nil, err
	}
	router.Registry = reg
	return router, nil
}

// parseSubjects parses every argument, reporting all bad ones at once.
func parseSubjects(args []string) ([]vouch.Reference, error) {
	refs := make([]vouch.Reference, 0, len(args))
	var bad []string
	for _, a := range args {
		r, err := vouch.ParseReference(a)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		refs = append(refs, r)
	}
	if len(bad) > 0 {
		return nil, usageErrorf("%s", strings.Join(bad, "; "))
	}
	return refs, nil
}

// applyConfig takes registry settings and limits from a config file or a
// ClusterVouchConfig's spec where the command line did not set them; flags
// win, lists are joined.
func (f *graphFlags) applyConfig(fs *pflag.FlagSet, cfg *config.Spec) {
	r := cfg.Registries
	f.named = cfg.NamedRegistries()
	f.plainHTTP = f.plainHTTP || r.PlainHTTP
	f.insecure = append(append([]string(nil), r.Insecure...), f.insecure...)
	if f.dockerConfig == "" {
		f.dockerConfig = r.DockerConfig
	}
	l := cfg.Limits
	set := func(flag string, dst *int64, v int64) {
		if !fs.Changed(flag) && v != 0 {
			*dst = v
		}
	}
	setInt := func(flag string, dst *int, v int) {
		if !fs.Changed(flag) && v != 0 {
			*dst = v
		}
	}
	set("max-manifest-bytes", &f.limits.MaxManifestBytes, l.MaxManifestBytes)
	set("max-blob-bytes", &f.limits.MaxBlobBytes, l.MaxBlobBytes)
	setInt("max-referrer-pages", &f.limits.MaxReferrerPages, l.MaxReferrerPages)
	setInt("max-depth", &f.limits.MaxDepth, l.MaxDepth)
	setInt("max-nodes", &f.limits.MaxNodes, l.MaxNodes)
}

// loadConfig reads the config file named by vf (if any), lets it fill the
// graph flags the command line left unset, and validates the result.
func loadConfig(fs *pflag.FlagSet, gf *graphFlags, vf *verifierFlags) (*config.File, error) {
	cfg, err := vf.load()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		gf.applyConfig(fs, &cfg.Spec)
	}
	return cfg, gf.validate()
}

// executor returns an Executor over st with the graph flags' limits and
// concurrency, for verifiers and pol; cosign's .sig/.att tags are read when
// a verifier handles cosign's types.
func (f *graphFlags) executor(st vouch.Store, verifiers []vouch.Verifier, pol vouch.Policy) *vouch.Executor {
	return &vouch.Executor{
		Store:       st,
		Verifiers:   verifiers,
		Policy:      pol,
		Limits:      f.limits,
		Concurrency: f.concurrency,
		Discovery:   vouch.Discovery{CosignTags: handlesAny(verifiers, vouch.CosignSignatureType, vouch.CosignAttestationType)},
	}
}

// handlesAny reports whether one of verifiers handles one of types.
func handlesAny(verifiers []vouch.Verifier, types ...string) bool {
	for _, v := range verifiers {
		for _, t := range types {
			if v.Handles(t) {
				return true
			}
		}
	}
	return false
}
