package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/admission"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/preverify"
	"github.com/vouch-project/vouch/server/reload"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/trust"
)

// serveFlags are the flags of `vouch serve` beyond the graph and verifier
// flags it shares with `vouch verify`.
type serveFlags struct {
	listen, metricsListen       string
	certFile, keyFile, clientCA string
	generateTLS                 string
	dnsNames                    []string
	redisAddr, redisCAFile      string
	redisSentinelAddrs          []string
	redisSentinelMaster         string
	redisTLS                    bool
	redisHMACKeyFile            string
	redisHMACPreviousKeyFile    string
	redisInsecure               bool
	budget, cacheTTL, denyTTL   time.Duration
	tagTTL, tagMaxStale, linger time.Duration
	gatekeeperGraph             bool
	shutdownTimeout             time.Duration
	maxBodyBytes                int64
	maxKeys                     int
	logLevel                    string
	reloadInterval              time.Duration

	// The Kubernetes source (kubernetes.go).
	kubernetes                bool
	kubeconfig, kubeNamespace string
	kubeConfigName            string
	kubePullSecrets           bool
	// The in-server audit (audit_kubernetes.go).
	auditInterval time.Duration
	auditRate     float64
	// Pre-verification (preverify.go).
	eventsTokenFile, eventsListen string
	preverifyQueue                int
	preverifyRate                 float64
	preverifyPerRegistry          int
	watchWorkloads                bool
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
	fs.StringSliceVar(&f.redisSentinelAddrs, "redis-sentinel-addrs", nil, "share verdicts with other replicas through the Redis master named by the Sentinels at `HOST:PORT[,HOST:PORT...]`, following it through failovers (instead of --redis-addr; needs --redis-sentinel-master; credentials as with --redis-addr, and the Sentinels' password from $VOUCH_REDIS_SENTINEL_PASSWORD)")
	fs.StringVar(&f.redisSentinelMaster, "redis-sentinel-master", "", "with --redis-sentinel-addrs: the `NAME` under which the Sentinels monitor the master")
	fs.BoolVar(&f.redisTLS, "redis-tls", false, "talk TLS to Redis (and to the Sentinels)")
	fs.StringVar(&f.redisCAFile, "redis-ca-file", "", "with --redis-tls: trust the CA certificates in `FILE` (PEM) instead of the system's")
	fs.StringVar(&f.redisHMACKeyFile, "redis-hmac-key-file", "", "with --redis-addr or --redis-sentinel-addrs (required): authenticate every Redis entry with an HMAC-SHA256 under the key in `FILE`, which the replicas share (a mounted Secret; at least 32 bytes, white space trimmed); entries that fail are ignored and counted")
	fs.StringVar(&f.redisHMACPreviousKeyFile, "redis-hmac-previous-key-file", "", "with --redis-hmac-key-file: also accept Redis entries authenticated with the key in `FILE`, never writing with it (the key before a rotation, while replicas are rolled)")
	fs.BoolVar(&f.redisInsecure, "redis-insecure-unauthenticated", false, "with --redis-addr or --redis-sentinel-addrs, and no --redis-hmac-key-file: trust every Redis entry as it is; whoever can write to Redis then decides which images are allowed")
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
	fs.DurationVar(&f.reloadInterval, "config-reload-interval", reload.DefaultInterval, "look this often for changes of the config file and the trust files it or the quick flags name, and swap a valid change in without a restart (0: never)")
	fs.BoolVar(&f.kubernetes, "kubernetes", false, "read the configuration from the ClusterVouchConfig named by --kubernetes-config, the tenants' VouchConfigs and the Secrets and ConfigMaps they reference, in cluster (the pod's service account) or with --kubeconfig; changes are swapped in without a restart and the resource's status says whether it serves (instead of --config; see docs/kubernetes.md)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "with --kubernetes: reach the API server with this kubeconfig `FILE` instead of the pod's service account")
	fs.StringVar(&f.kubeNamespace, "kubernetes-namespace", "", "with --kubernetes: vouch's own `NAMESPACE`, where references without a namespace are read (default: the pod's namespace, or $POD_NAMESPACE)")
	fs.StringVar(&f.kubeConfigName, "kubernetes-config", "vouch", "with --kubernetes: the ClusterVouchConfig `NAME` to serve")
	fs.BoolVar(&f.kubePullSecrets, "kubernetes-pull-secrets", false, "with --kubernetes: read each admission request's images with its pod's image pull secrets (or its service account's), read in the pod's namespace, for that request only; needs get on secrets and serviceaccounts in every namespace (deploy/rbac/pull-secrets/clusterrole.yaml; see docs/kubernetes.md)")
	fs.DurationVar(&f.auditInterval, "audit-interval", 0, "with --kubernetes: verify the images of the running Pods again this often, and whenever the configuration or its trust material changes, and write the verdicts as a wgpolicyk8s.io PolicyReport per namespace (0: no audit; see docs/audit.md)")
	fs.Float64Var(&f.auditRate, "audit-rate", 5, "with --audit-interval: start at most this many verifications per second, so that the audit never crowds out admission")
	fs.StringVar(&f.eventsTokenFile, "events-token-file", "", "serve the registry events endpoints (POST /events/v1/registry for the distribution registry's notifications, /events/v1/subjects for CI after signing) to callers presenting the bearer token in `FILE` (at least 16 bytes, white space trimmed), and verify the images they name again at once, replacing their cached verdicts (see docs/pre-verification.md)")
	fs.StringVar(&f.eventsListen, "events-listen", "", "with --events-token-file: also serve the events endpoints over HTTPS on `ADDR` (host:port) without requiring a client certificate, for registries that cannot present --client-ca-file's")
	fs.IntVar(&f.preverifyQueue, "preverify-queue", preverify.DefaultMaxQueued, "with --events-token-file or --watch-workloads: most images waiting for pre-verification; more are dropped and counted")
	fs.Float64Var(&f.preverifyRate, "preverify-rate", preverify.DefaultRate, "with --events-token-file or --watch-workloads: start at most this many pre-verifications per second")
	fs.IntVar(&f.preverifyPerRegistry, "preverify-registry-concurrency", preverify.DefaultPerRegistry, "with --events-token-file or --watch-workloads: most pre-verifications in progress at once against one registry")
	fs.BoolVar(&f.watchWorkloads, "watch-workloads", false, "with --kubernetes: verify the images of new or changed Deployments, StatefulSets, DaemonSets, Jobs, CronJobs and ReplicaSets as soon as they appear, so that their Pods' admission finds the verdicts cached (needs list and watch on them: deploy/rbac/preverify)")
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
	for name, d := range map[string]time.Duration{"--cache-ttl": f.cacheTTL, "--deny-cache-ttl": f.denyTTL, "--tag-ttl": f.tagTTL, "--tag-max-stale": f.tagMaxStale, "--linger": f.linger, "--config-reload-interval": f.reloadInterval} {
		if d < 0 {
			return usageErrorf("%s cannot be negative", name)
		}
	}
	if f.maxBodyBytes <= 0 || f.maxKeys <= 0 {
		return usageErrorf("--max-body-bytes and --max-keys must be positive")
	}
	if err := f.validateKubernetes(); err != nil {
		return err
	}
	if err := f.validatePreverify(); err != nil {
		return err
	}
	if f.redisCAFile != "" && !f.redisTLS {
		return usageErrorf("--redis-ca-file needs --redis-tls")
	}
	if err := f.validateRedisTarget(); err != nil {
		return err
	}
	return f.validateRedisKeys()
}

// validateRedisTarget checks that the flags name one Redis server, or the
// Sentinels of a master, or neither.
func (f *serveFlags) validateRedisTarget() error {
	switch {
	case f.redisAddr != "" && len(f.redisSentinelAddrs) > 0:
		return usageErrorf("--redis-addr and --redis-sentinel-addrs exclude each other: name one Redis server, or the Sentinels that know the master")
	case len(f.redisSentinelAddrs) > 0 && f.redisSentinelMaster == "":
		return usageErrorf("--redis-sentinel-addrs needs --redis-sentinel-master NAME, the name under which the Sentinels monitor the master")
	case len(f.redisSentinelAddrs) == 0 && f.redisSentinelMaster != "":
		return usageErrorf("--redis-sentinel-master needs --redis-sentinel-addrs HOST:PORT[,HOST:PORT...]")
	case (f.redisTLS || f.redisCAFile != "") && !f.redisEnabled():
		return usageErrorf("--redis-tls and --redis-ca-file need --redis-addr or --redis-sentinel-addrs")
	}
	for _, addr := range f.redisSentinelAddrs {
		host, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil || n == 0 {
			return usageErrorf("--redis-sentinel-addrs: %q is not HOST:PORT (a Sentinel's host and port, say redis-sentinel:26379)", addr)
		}
	}
	return nil
}

// redisEnabled reports whether the flags ask for a Redis cache.
func (f *serveFlags) redisEnabled() bool {
	return f.redisAddr != "" || len(f.redisSentinelAddrs) > 0
}

// redisFlag is the flag that names Redis, for messages.
func (f *serveFlags) redisFlag() string {
	if len(f.redisSentinelAddrs) > 0 {
		return "--redis-sentinel-addrs"
	}
	return "--redis-addr"
}

// redisTarget describes the Redis the flags name, for log lines: the
// server, or the master and its Sentinels.
func (f *serveFlags) redisTarget() string {
	if len(f.redisSentinelAddrs) > 0 {
		return fmt.Sprintf("master %q via sentinels %s", f.redisSentinelMaster, strings.Join(f.redisSentinelAddrs, ","))
	}
	return f.redisAddr
}

// validateKubernetes checks the flags of the Kubernetes source.
func (f *serveFlags) validateKubernetes() error {
	switch {
	case !f.kubernetes && (f.kubeconfig != "" || f.kubeNamespace != "" || f.kubeConfigName != "vouch" || f.kubePullSecrets):
		return usageErrorf("--kubeconfig, --kubernetes-namespace, --kubernetes-config and --kubernetes-pull-secrets need --kubernetes")
	case f.kubernetes && f.kubeConfigName == "":
		return usageErrorf("--kubernetes-config: name a ClusterVouchConfig")
	case f.auditInterval != 0 && !f.kubernetes:
		return usageErrorf("--audit-interval needs --kubernetes: the audit reads the cluster's Pods")
	case f.auditInterval < 0 || f.auditRate <= 0:
		return usageErrorf("--audit-interval must not be negative and --audit-rate must be positive")
	case f.kubernetes && f.reloadInterval == 0:
		return usageErrorf("--kubernetes needs a positive --config-reload-interval: it is how often the ClusterVouchConfig, the VouchConfigs and the Secrets and ConfigMaps they reference are read again")
	}
	return nil
}

// validatePreverify checks the flags of pre-verification.
func (f *serveFlags) validatePreverify() error {
	switch {
	case f.eventsListen != "" && f.eventsTokenFile == "":
		return usageErrorf("--events-listen needs --events-token-file: the events endpoints are served only to callers that present its token")
	case f.watchWorkloads && !f.kubernetes:
		return usageErrorf("--watch-workloads needs --kubernetes: it watches the cluster's workloads")
	case f.preverifyQueue <= 0 || f.preverifyRate <= 0 || f.preverifyPerRegistry <= 0:
		return usageErrorf("--preverify-queue, --preverify-rate and --preverify-registry-concurrency must be positive")
	}
	return nil
}

// preverifyEnabled reports whether a source of pre-verification is on.
func (f *serveFlags) preverifyEnabled() bool { return f.eventsTokenFile != "" || f.watchWorkloads }

// validateKubernetesSource checks that, with --kubernetes, the
// configuration comes from the cluster alone: --config and the quick
// flags would add trust from files that the resource's status does not
// describe and that the Kubernetes source does not read again.
func validateKubernetesSource(sf *serveFlags, vf *verifierFlags) error {
	if !sf.kubernetes {
		return nil
	}
	if vf.configPath != "" {
		return usageErrorf("--kubernetes and --config exclude each other: with --kubernetes the configuration is the ClusterVouchConfig %q (one source of truth, whose status says whether it serves); convert a config file with 'vouch config convert'", sf.kubeConfigName)
	}
	if len(vf.notationCerts)+len(vf.cosignKeys) > 0 || vf.notationTrustPolicy != "" || vf.notationConfigDir != "" {
		return usageErrorf("--kubernetes excludes --notation-cert, --notation-trust-policy, --notation-config-dir and --cosign-key: trust comes from the ClusterVouchConfig %q and the Secrets and ConfigMaps it references", sf.kubeConfigName)
	}
	return nil
}

// validateRedisKeys checks the flags that authenticate Redis entries:
// without them, whoever can write to Redis could make any image allowed.
func (f *serveFlags) validateRedisKeys() error {
	switch {
	case !f.redisEnabled() && (f.redisHMACKeyFile != "" || f.redisHMACPreviousKeyFile != "" || f.redisInsecure):
		return usageErrorf("--redis-hmac-key-file, --redis-hmac-previous-key-file and --redis-insecure-unauthenticated need --redis-addr or --redis-sentinel-addrs")
	case f.redisHMACKeyFile != "" && f.redisInsecure:
		return usageErrorf("--redis-hmac-key-file and --redis-insecure-unauthenticated exclude each other")
	case f.redisHMACPreviousKeyFile != "" && f.redisHMACKeyFile == "":
		return usageErrorf("--redis-hmac-previous-key-file needs --redis-hmac-key-file (the previous key only reads)")
	case f.redisEnabled() && f.redisHMACKeyFile == "" && !f.redisInsecure:
		return usageErrorf("%s needs --redis-hmac-key-file: verdicts read from Redis are trusted only with a MAC under a key the replicas share, "+
			"else whoever can write to Redis can make any image allowed (a file of at least 32 bytes, say from 'head -c 48 /dev/urandom | base64', mounted from a Secret; "+
			"--redis-insecure-unauthenticated accepts the risk)", f.redisFlag())
	}
	return nil
}

// ttlOption turns a flag's 0 ("do not cache") into the engine's negative.
func ttlOption(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// redisCache returns the Redis cache that the --redis-* flags describe
// (one server, or the master behind Sentinels), its entries authenticated
// with the --redis-hmac-* keys.
func (sf *serveFlags) redisCache(metrics *server.Metrics, logger *slog.Logger) (*cache.Redis, error) {
	opts := cache.RedisOptions{
		Addr:          sf.redisAddr,
		SentinelAddrs: sf.redisSentinelAddrs,
		MasterName:    sf.redisSentinelMaster,
		Username:      os.Getenv("VOUCH_REDIS_USERNAME"),
		Password:      os.Getenv("VOUCH_REDIS_PASSWORD"),
		OnError:       metrics.RedisError,
		OnUnavailable: metrics.RedisOutage,
		OnLookup:      metrics.RedisLookup,
		Logger:        logger,

		OnRejected:              metrics.CacheRejected,
		InsecureUnauthenticated: sf.redisInsecure,
	}
	if len(sf.redisSentinelAddrs) > 0 {
		opts.SentinelPassword = os.Getenv("VOUCH_REDIS_SENTINEL_PASSWORD")
	}
	if sf.redisHMACKeyFile != "" {
		key, err := cache.ReadHMACKey(sf.redisHMACKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--redis-hmac-key-file: %w", err)
		}
		opts.HMACKey = key
	}
	if sf.redisHMACPreviousKeyFile != "" {
		key, err := cache.ReadHMACKey(sf.redisHMACPreviousKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--redis-hmac-previous-key-file: %w", err)
		}
		opts.HMACPreviousKey = key
	}
	if sf.redisInsecure {
		logger.Warn("--redis-insecure-unauthenticated: entries read from Redis are trusted as they are; whoever can write to Redis decides which images are allowed", "redis", sf.redisTarget())
	}
	if sf.redisTLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if sf.redisCAFile != "" {
			pool, err := trust.CertPool(trust.File(sf.redisCAFile))
			if err != nil {
				return nil, fmt.Errorf("--redis-ca-file: %w", err)
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

// podCredentials returns, with --kubernetes-pull-secrets, the credentials
// of each admission request's pod and the engine's CredentialScope, which
// keeps what is learnt with them apart (engine.Options.CredentialScope);
// nil, nil without it.
func (sf *serveFlags) podCredentials() (admission.CredentialsFunc, func(context.Context, string) string, error) {
	if !sf.kubePullSecrets {
		return nil, nil, nil
	}
	creds, err := pullSecretsCredentials(sf)
	if err != nil {
		return nil, nil, err
	}
	return creds, registry.Scope, nil
}
