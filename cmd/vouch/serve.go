package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/redis/go-redis/v9/logging"
	"github.com/spf13/cobra"

	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/preverify"
	"github.com/vouch-project/vouch/server/reload"
)

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
  POST /events/v1/registry       with --events-token-file: the distribution registry's
                                 notifications (notifications.endpoints)
  POST /events/v1/subjects       with --events-token-file: {"subject": IMAGE} from CI
  GET  /healthz /readyz /metrics health, readiness, Prometheus metrics

Verifiers, trust and policy come from --config and the quick flags, as for
'vouch verify'. Gatekeeper keys may start with "[namespace]" to apply that
namespace's policy scopes. Every request is answered within --budget: what
vouch could not decide by then is a per-image timeout error (Gatekeeper) or a
denial (admission: fail closed). Verdicts are cached by digest and by a hash
of the policy and trust material, in memory and, with --redis-addr (or
--redis-sentinel-addrs and --redis-sentinel-master: the master that Redis
Sentinels name, followed through failovers), in Redis shared by the
replicas, each entry with an HMAC under the key in
--redis-hmac-key-file (required: entries without a valid MAC are ignored, so
that writing to Redis cannot make an image allowed). A tag's digest is used
--tag-ttl as it is, then up to --tag-max-stale while one background request
resolves the tag again.

The config file and the trust files it and the quick flags name are looked
at every --config-reload-interval: a valid change is swapped in whole, without
a restart (requests in flight finish under the previous one); an invalid one
is logged and counted, and the last good configuration keeps serving.

With --kubernetes (a vouch built with -tags kubernetes), the configuration is
the ClusterVouchConfig --kubernetes-config and the Secrets and ConfigMaps it
references, read every --config-reload-interval and when a watch sees them
change; the resource's status says whether it serves, and /readyz is ready
once it does. See docs/kubernetes.md.

The certificate and key files are read again when they change, without a
restart. With --client-ca-file every client must present a certificate issued
by that CA (mutual TLS); kubelet probes and Prometheus then use
--metrics-listen. SIGTERM stops accepting connections and answers the
requests in flight first. See docs/serving.md.

Pre-verification verifies images before admission asks, through one bounded
queue (--preverify-queue, --preverify-rate, --preverify-registry-concurrency)
that never delays a request: the events endpoints, behind the bearer token of
--events-token-file (also on --events-listen, without client certificates),
verify the images that registry pushes and CI name again at once, replacing
their cached verdicts (a new signature turns a cached denial into an allow, a
moved tag is pinned again); with --kubernetes, --watch-workloads verifies the
images of new or changed workload templates. See docs/pre-verification.md.`,
		Example: `  # Local certificates, then serve with a quick trust flag
  vouch serve --generate-tls ./tls --tls-dns-name vouch.vouch-system.svc
  vouch serve --tls-cert-file tls/tls.crt --tls-key-file tls/tls.key \
    --notation-cert ca.pem --listen 127.0.0.1:8443

  # As Gatekeeper's provider: mutual TLS with Gatekeeper's client CA, shared
  # cache in Redis (entries authenticated with a key from a Secret), probes
  # and metrics on a plain port
  vouch serve --config vouch.yaml --tls-cert-file /tls/tls.crt --tls-key-file /tls/tls.key \
    --client-ca-file /gatekeeper-ca/ca.crt --metrics-listen :9090 \
    --redis-addr redis:6379 --redis-hmac-key-file /redis-hmac/key

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
			if vf.keyRefresh <= 0 {
				return usageErrorf("--key-refresh must be positive")
			}
			if err := validateKubernetesSource(&sf, &vf); err != nil {
				return err
			}
			if gf.username != "" || gf.passwordStdin {
				return usageErrorf("serve reads registry credentials from --registry-config (a Docker config.json), not --username/--password-stdin")
			}
			return serve(cmd, &gf, &vf, &sf)
		},
	}
	sf.register(cmd.Flags())
	vf.register(cmd.Flags())
	cmd.Flags().DurationVar(&vf.keyRefresh, "key-refresh", defaultKeyRefresh, "fetch the config file's key-vault material (cosign KMS keys, Azure Key Vault certificates; -tags kms) again this often; a rotated key serves from the next config reload, a failed fetch keeps the material fetched before (docs/key-management.md)")
	gf.register(cmd.Flags())
	registerTargetFlags(cmd.Flags(), &gf)
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

	// Every configuration, the first and each reloaded one, is built whole
	// by gens and swapped in by holder (docs/serving.md, Reloading). The
	// files' first configuration is built before serving; the Kubernetes
	// source's comes later, and /readyz says ready once one serves.
	metrics := server.NewMetrics()
	vf.logger = logger
	gens := &generations{fs: cmd.Flags(), gf: gf, vf: vf, metrics: metrics}
	var (
		first *reload.Generation
		src   reload.Source
		err   error
	)
	if sf.kubernetes {
		if src, err = kubernetesSource(sf, gens, logger); err != nil {
			return err
		}
	} else {
		poll := gens.poll(sf, logger)
		if first, err = gens.first(cmd.Context(), poll); err != nil {
			return err
		}
		if sf.reloadInterval > 0 {
			src = poll
		}
	}
	podCredentials, credentialScope, err := sf.podCredentials()
	if err != nil {
		return err
	}
	var readyServer atomic.Pointer[server.Server]
	hooks := metrics.ReloadHooks()
	onServe := hooks.OnServe
	// A new configuration (or trust material) serving starts an audit.
	var auditOnServe atomic.Pointer[func()]
	hooks.OnServe = func(g *reload.Generation) {
		onServe(g)
		if s := readyServer.Load(); s != nil {
			s.SetReady(true)
		}
		if t := auditOnServe.Load(); t != nil {
			(*t)()
		}
	}
	holder, err := reload.NewHolder(first, reload.HolderOptions{Hooks: hooks, Logger: logger})
	if err != nil {
		return &exitError{code: exitUndecided, err: err}
	}

	var resultCache cache.Cache
	if sf.redisEnabled() {
		rc, err := sf.redisCache(metrics, logger)
		if err != nil {
			return &exitError{code: exitUndecided, err: err}
		}
		defer rc.Close()
		if err := rc.Ping(cmd.Context()); err != nil {
			logger.Warn("redis does not answer yet; serving from the local cache until it does", "error", err.Error())
		}
		resultCache = rc
	}
	// With pre-verification, the namespaces that ask are remembered with
	// the policy they decide under, so that an event replaces the
	// verdicts of every policy scope (preverify.Scopes).
	executor := engine.ExecutorFunc(holder.Executor)
	var scopes *preverify.Scopes
	if sf.preverifyEnabled() {
		scopes = preverify.NewScopes(0)
		executor = scopes.Executor(executor)
	}
	var eng *engine.Engine
	eng, err = engine.New(engine.Options{
		Executor:        executor,
		Cache:           resultCache,
		AllowTTL:        ttlOption(sf.cacheTTL),
		DenyTTL:         ttlOption(sf.denyTTL),
		TagTTL:          ttlOption(sf.tagTTL),
		TagMaxStale:     ttlOption(sf.tagMaxStale),
		VerifyTimeout:   gf.timeout,
		Linger:          sf.linger,
		CredentialScope: credentialScope,
		Hooks:           metrics.EngineHooks(func() int64 { return eng.InFlight() }),
		Logger:          logger,
	})
	if err != nil {
		return &exitError{code: exitUndecided, err: err}
	}
	var queue *preverify.Queue
	var events *preverify.Handler
	if sf.preverifyEnabled() {
		if queue, events, err = newPreverify(sf, eng, scopes, gf.timeout, metrics, logger); err != nil {
			return err
		}
	}
	srvOpts := server.Options{
		Addr:                 sf.listen,
		MetricsAddr:          sf.metricsListen,
		TLS:                  server.TLSFiles{CertFile: sf.certFile, KeyFile: sf.keyFile, ClientCAFile: sf.clientCA},
		Decider:              eng,
		Budget:               sf.budget,
		MaxBodyBytes:         sf.maxBodyBytes,
		MaxKeys:              sf.maxKeys,
		GatekeeperGraph:      sf.gatekeeperGraph,
		ShutdownTimeout:      sf.shutdownTimeout,
		RequestContext:       holder.Pin,
		AdmissionCredentials: podCredentials,
		Metrics:              metrics,
		Logger:               logger,
	}
	if events != nil {
		srvOpts.Events, srvOpts.EventsAddr = events, sf.eventsListen
	}
	srv, err := server.New(srvOpts)
	if err != nil {
		return &exitError{code: exitUndecided, err: err}
	}
	// Ready once a configuration and its trust material are loaded.
	readyServer.Store(srv)
	srv.SetReady(holder.Current() != nil)
	if first != nil {
		logger.Info("vouch serving", "version", version, "verifiers", first.Verifiers, "policyHash", reload.Short(first.PolicyHash), "redis", sf.redisTarget(), "configReloadInterval", sf.reloadInterval.String())
	} else {
		logger.Info("vouch serving; ready once the ClusterVouchConfig is applied", "version", version, "clusterVouchConfig", sf.kubeConfigName, "redis", sf.redisTarget(), "configReloadInterval", sf.reloadInterval.String())
	}
	ctx, stop := context.WithCancel(cmd.Context())
	wait := watch(ctx, src, holder)
	defer func() { stop(); wait() }()
	if vf.vault != nil && src != nil {
		// Refreshed key-vault material reaches the verifiers through the
		// config reload, whose fingerprint hashes it.
		done := make(chan struct{})
		go func() { defer close(done); _ = vf.vault.Start(ctx) }()
		defer func() { stop(); <-done }()
	}
	if queue != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = queue.Start(ctx)
		}()
		defer func() { stop(); <-done }()
	}
	if sf.watchWorkloads {
		waitWatch, err := startWorkloadWatch(ctx, sf, queue, logger)
		if err != nil {
			return err
		}
		defer func() { stop(); waitWatch() }()
	}
	if sf.auditInterval > 0 {
		trigger, waitAudit, err := startAudit(ctx, sf, eng.Verify, metrics, logger)
		if err != nil {
			return err
		}
		defer func() { stop(); waitAudit() }()
		auditOnServe.Store(&trigger)
		if holder.Current() != nil {
			trigger()
		}
	}
	if err := srv.ListenAndServe(ctx); err != nil {
		return &exitError{code: exitUndecided, err: err}
	}
	logger.Info("vouch stopped")
	return nil
}
