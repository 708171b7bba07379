package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9/logging"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
)

// serveFlags are the flags of `vouch serve` beyond the graph and verifier
// flags it shares with `vouch verify`.
type serveFlags struct {
	listen, metricsListen       string
	certFile, keyFile, clientCA string
	generateTLS                 string
	dnsNames                    []string
	redisAddr, redisCAFile      string
	redisTLS                    bool
	budget, cacheTTL, denyTTL   time.Duration
	tagTTL, tagMaxStale, linger time.Duration
	gatekeeperGraph             bool
	shutdownTimeout             time.Duration
	maxBodyBytes                int64
	maxKeys                     int
	logLevel                    string
}

func (f *serveFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.listen, "listen", ":8443", "serve HTTPS on `ADDR` (host:port)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "also serve /metrics, /healthz and /readyz over plain HTTP on `ADDR`, for Prometheus and probes that present no client certificate")
	fs.StringVar(&f.certFile, "tls-cert-file", "", "serving certificate chain `FILE` (PEM); reloaded when it changes")
	fs.StringVar(&f.keyFile, "tls-key-file", "", "serving private key `FILE` (PEM); reloaded when it changes")
	fs.StringVar(&f.clientCA, "client-ca-file", "", "require client certificates issued by the CA certificates in `FILE` (PEM; mutual TLS, as with Gatekeeper's client certificate)")
	fs.StringVar(&f.generateTLS, "generate-tls", "", "write a self-signed CA, a server certificate (127.0.0.1, localhost, --tls-dns-name) and a client certificate into `DIR`, then exit")
	fs.StringArrayVar(&f.dnsNames, "tls-dns-name", nil, "with --generate-tls: also issue the server certificate for this DNS `NAME` or IP address (repeatable)")
	fs.StringVar(&f.redisAddr, "redis-addr", "", "share verdicts with other replicas through Redis at `HOST:PORT` (credentials from $VOUCH_REDIS_USERNAME and $VOUCH_REDIS_PASSWORD)")
	fs.BoolVar(&f.redisTLS, "redis-tls", false, "talk TLS to Redis")
	fs.StringVar(&f.redisCAFile, "redis-ca-file", "", "with --redis-tls: trust the CA certificates in `FILE` (PEM) instead of the system's")
	fs.DurationVar(&f.budget, "budget", server.DefaultBudget, "answer every request within this time; what is not decided by then is a timeout error (Gatekeeper) or a denial (admission)")
	fs.DurationVar(&f.cacheTTL, "cache-ttl", engine.DefaultAllowTTL, "cache allowed verdicts this long")
	fs.DurationVar(&f.denyTTL, "deny-cache-ttl", engine.DefaultDenyTTL, "cache definitive denials this long (undecided answers are never cached)")
	fs.DurationVar(&f.tagTTL, "tag-ttl", engine.DefaultTagTTL, "use the cached digest of a tag this long without asking the registry (0: do not cache tags)")
	fs.DurationVar(&f.tagMaxStale, "tag-max-stale", engine.DefaultTagMaxStale, "after --tag-ttl, keep using a tag's cached digest while it is resolved again in the background, up to this long after it was resolved; older digests are resolved on the request's path (0: always resolve on the request's path after --tag-ttl)")
	fs.DurationVar(&f.linger, "linger", 0, "keep verifying up to this long after a request's budget ran out, so that its retry finds the verdict cached (0: stop at once)")
	fs.BoolVar(&f.gatekeeperGraph, "gatekeeper-graph", false, "put the whole report tree (graph) in every Gatekeeper verify value; without it a value carries the verdict, the reason and the failed nodes, and a request asks for the graph with ?graph=true")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "on SIGTERM, wait this long for requests in flight")
	fs.Int64Var(&f.maxBodyBytes, "max-body-bytes", server.DefaultMaxBodyBytes, "largest request body, in bytes")
	fs.IntVar(&f.maxKeys, "max-keys", 1000, "most keys (images) in one Gatekeeper request")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error (JSON lines on standard error)")
}

func (f *serveFlags) validate() error {
	if f.generateTLS != "" {
		return nil
	}
	if f.certFile == "" || f.keyFile == "" {
		return usageErrorf("serve needs --tls-cert-file and --tls-key-file (HTTPS only; --generate-tls DIR makes a local pair)")
	}
	for name, d := range map[string]time.Duration{"--budget": f.budget, "--shutdown-timeout": f.shutdownTimeout} {
		if d <= 0 {
			return usageErrorf("%s must be positive", name)
		}
	}
	for name, d := range map[string]time.Duration{"--cache-ttl": f.cacheTTL, "--deny-cache-ttl": f.denyTTL, "--tag-ttl": f.tagTTL, "--tag-max-stale": f.tagMaxStale, "--linger": f.linger} {
		if d < 0 {
			return usageErrorf("%s cannot be negative", name)
		}
	}
	if f.maxBodyBytes <= 0 || f.maxKeys <= 0 {
		return usageErrorf("--max-body-bytes and --max-keys must be positive")
	}
	if f.redisCAFile != "" && !f.redisTLS {
		return usageErrorf("--redis-ca-file needs --redis-tls")
	}
	return nil
}

func newServeCommand(stdin io.Reader) *cobra.Command {
	var (
		gf graphFlags
		vf verifierFlags
		sf serveFlags
	)
	cmd := &cobra.Command{
		Use:   "serve --tls-cert-file FILE --tls-key-file FILE [flags]",
		Short: "Serve decisions to Gatekeeper (external data) and Kubernetes (admission webhook) over HTTPS",
		Long: `Serve answers, over HTTPS (TLS 1.3), whether images may run:

  POST /gatekeeper/v1/verify     Gatekeeper external data provider: one item per
                                 image, value {isSuccess, verdict, reason, failures}
                                 (and the report tree, graph, with ?graph=true)
  POST /gatekeeper/v1/mutate     pins images to their digests (Gatekeeper mutation)
  POST /ratify/gatekeeper/v1/... the same, on Ratify's paths
  POST /admission/v1/validate    Kubernetes validating admission webhook
  POST /admission/v1/mutate      Kubernetes mutating admission webhook (tag → digest)
  GET  /healthz /readyz /metrics health, readiness, Prometheus metrics

Verifiers, trust and policy come from --config and the quick flags, as for
'vouch verify'. Gatekeeper keys may start with "[namespace]" to apply that
namespace's policy scopes. Every request is answered within --budget: what
vouch could not decide by then is a per-image timeout error (Gatekeeper) or a
denial (admission: fail closed). Verdicts are cached by digest and by a hash
of the policy and trust material, in memory and, with --redis-addr, in Redis
shared by the replicas. A tag's digest is used --tag-ttl as it is, then up to
--tag-max-stale while one background request resolves the tag again.

The certificate and key files are read again when they change, without a
restart. With --client-ca-file every client must present a certificate issued
by that CA (mutual TLS); kubelet probes and Prometheus then use
--metrics-listen. SIGTERM stops accepting connections and answers the
requests in flight first. See docs/serving.md.`,
		Example: `  # Local certificates, then serve with a quick trust flag
  vouch serve --generate-tls ./tls --tls-dns-name vouch.vouch-system.svc
  vouch serve --tls-cert-file tls/tls.crt --tls-key-file tls/tls.key \
    --notation-cert ca.pem --listen 127.0.0.1:8443

  # As Gatekeeper's provider: mutual TLS with Gatekeeper's client CA, shared
  # cache in Redis, probes and metrics on a plain port
  vouch serve --config vouch.yaml --tls-cert-file /tls/tls.crt --tls-key-file /tls/tls.key \
    --client-ca-file /gatekeeper-ca/ca.crt --redis-addr redis:6379 --metrics-listen :9090

  # Ask it like Gatekeeper does
  curl --cacert tls/ca.crt --cert tls/client.crt --key tls/client.key \
    -d '{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["registry.example/app:v1"]}}' \
    https://127.0.0.1:8443/gatekeeper/v1/verify`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sf.validate(); err != nil {
				return err
			}
			if sf.generateTLS != "" {
				if err := server.GenerateTLS(sf.generateTLS, sf.dnsNames); err != nil {
					return &exitError{code: exitUndecided, err: err}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s, %s, %s, %s, %s and %s in %s\n", server.CAFile, server.CAKeyFile,
					server.CertFile, server.KeyFile, server.ClientCertFile, server.ClientKeyFile, sf.generateTLS)
				return nil
			}
			if gf.username != "" || gf.passwordStdin {
				return usageErrorf("serve reads registry credentials from --registry-config (a Docker config.json), not --username/--password-stdin")
			}
			return serve(cmd, &gf, &vf, &sf)
		},
	}
	sf.register(cmd.Flags())
	vf.register(cmd.Flags())
	gf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.Lookup("timeout").Usage = "bound one verification of an image, however long callers wait for it"
	for _, name := range []string{"username", "password-stdin"} {
		_ = fs.MarkHidden(name)
	}
	return cmd
}

// serve builds the engine and the server from the flags and serves until
// the command's context ends (SIGTERM, interrupt).
func serve(cmd *cobra.Command, gf *graphFlags, vf *verifierFlags, sf *serveFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(sf.logLevel)); err != nil {
		return usageErrorf("--log-level: %v", err)
	}
	logger := server.NewLogger(cmd.ErrOrStderr(), level)
	// go-redis logs each failed dial itself; the cache logs state changes.
	logging.Disable()

	cfg, err := loadConfig(cmd.Flags(), gf, vf)
	if err != nil {
		return err
	}
	verifiers, pol, err := vf.build(cfg)
	if err != nil {
		return err
	}
	fingerprint, err := verdictFingerprint(gf, vf, cfg)
	if err != nil {
		return &exitError{code: exitUndecided, err: err}
	}
	metrics := server.NewMetrics()
	regOpts := gf.registryOptions()
	regOpts.OnResponse = metrics.RegistryResponse
	st, err := registry.New(regOpts)
	if err != nil {
		return &exitError{code: exitUndecided, err: err}
	}
	timed := make([]vouch.Verifier, len(verifiers))
	names := make([]string, len(verifiers))
	for i, v := range verifiers {
		timed[i], names[i] = metrics.Verifier(v), v.Name()
	}
	base := vouch.Executor{
		Store:       st,
		Verifiers:   timed,
		Limits:      gf.limits,
		Concurrency: gf.concurrency,
		Discovery:   vouch.Discovery{CosignTags: handlesAny(verifiers, vouch.CosignSignatureType, vouch.CosignAttestationType)},
	}
	executors, err := engine.NewNamespaceExecutors(engine.NamespaceOptions{Base: base, Policy: pol, NamespacePolicy: namespacePolicies(cfg, names), PolicyHash: fingerprint})
	if err != nil {
		return &exitError{code: exitUndecided, err: err}
	}

	var resultCache cache.Cache
	if sf.redisAddr != "" {
		rc, err := newRedisCache(sf, metrics, logger)
		if err != nil {
			return &exitError{code: exitUndecided, err: err}
		}
		defer rc.Close()
		if err := rc.Ping(cmd.Context()); err != nil {
			logger.Warn("redis does not answer yet; serving from the local cache until it does", "error", err.Error())
		}
		resultCache = rc
	}
	var eng *engine.Engine
	eng, err = engine.New(engine.Options{
		Executor:      executors.Executor,
		Cache:         resultCache,
		AllowTTL:      ttlOption(sf.cacheTTL),
		DenyTTL:       ttlOption(sf.denyTTL),
		TagTTL:        ttlOption(sf.tagTTL),
		TagMaxStale:   ttlOption(sf.tagMaxStale),
		VerifyTimeout: gf.timeout,
		Linger:        sf.linger,
		Hooks:         metrics.EngineHooks(func() int64 { return eng.InFlight() }),
		Logger:        logger,
	})
	if err != nil {
		return &exitError{code: exitUndecided, err: err}
	}
	srv, err := server.New(server.Options{
		Addr:            sf.listen,
		MetricsAddr:     sf.metricsListen,
		TLS:             server.TLSFiles{CertFile: sf.certFile, KeyFile: sf.keyFile, ClientCAFile: sf.clientCA},
		Decider:         eng,
		Budget:          sf.budget,
		MaxBodyBytes:    sf.maxBodyBytes,
		MaxKeys:         sf.maxKeys,
		GatekeeperGraph: sf.gatekeeperGraph,
		ShutdownTimeout: sf.shutdownTimeout,
		Metrics:         metrics,
		Logger:          logger,
	})
	if err != nil {
		return &exitError{code: exitUndecided, err: err}
	}
	// Configuration and trust material are loaded: ready.
	srv.SetReady(true)
	logger.Info("vouch serving", "version", version, "verifiers", names, "policyHash", fingerprint[:12], "redis", sf.redisAddr)
	if err := srv.ListenAndServe(cmd.Context()); err != nil {
		return &exitError{code: exitUndecided, err: err}
	}
	logger.Info("vouch stopped")
	return nil
}

// ttlOption turns a flag's 0 ("do not cache") into the engine's negative.
func ttlOption(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func newRedisCache(sf *serveFlags, metrics *server.Metrics, logger *slog.Logger) (*cache.Redis, error) {
	opts := cache.RedisOptions{
		Addr:     sf.redisAddr,
		Username: os.Getenv("VOUCH_REDIS_USERNAME"),
		Password: os.Getenv("VOUCH_REDIS_PASSWORD"),
		OnError:  metrics.RedisError,
		Logger:   logger,
	}
	if sf.redisTLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if sf.redisCAFile != "" {
			pem, err := os.ReadFile(sf.redisCAFile)
			if err != nil {
				return nil, fmt.Errorf("--redis-ca-file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--redis-ca-file %s holds no PEM certificate", sf.redisCAFile)
			}
			opts.TLS.RootCAs = pool
		}
	}
	rc, err := cache.NewRedis(opts)
	if err != nil {
		return nil, err
	}
	metrics.RedisAvailable(rc.Available)
	return rc, nil
}

// namespacePolicies returns the policy of each namespace when the config
// has scopes for some namespaces, else nil: one policy for all.
func namespacePolicies(cfg *config.File, verifierNames []string) func(namespace string) (vouch.Policy, error) {
	if cfg == nil || cfg.Policy == nil {
		return nil
	}
	for _, s := range cfg.Policy.Scopes {
		if len(s.Namespaces) > 0 {
			return func(ns string) (vouch.Policy, error) { return cfg.NamespacePolicy(ns, verifierNames) }
		}
	}
	return nil
}
