package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/reload"
)

// Metrics are the Prometheus metrics of a server, in a registry of their
// own (no global state): HTTP requests, verifications and verifiers,
// answers, caches, registry requests, Redis. Wire them with EngineHooks,
// Verifier, RegistryResponse, RedisError, RedisOutage, RedisLookup and
// CacheRejected; Handler serves them.
type Metrics struct {
	registry *prometheus.Registry

	requests         *prometheus.HistogramVec
	requestsInFlight prometheus.Gauge
	verifications    *prometheus.HistogramVec
	verifiers        *prometheus.HistogramVec
	answers          *prometheus.CounterVec
	cacheLookups     *prometheus.CounterVec
	tagRefreshes     *prometheus.CounterVec
	registryRequests *prometheus.CounterVec
	redisErrors      *prometheus.CounterVec
	redisOutages     prometheus.Counter
	redisLookups     *prometheus.CounterVec
	cacheRejected    *prometheus.CounterVec
	reloads          *prometheus.CounterVec
	reloadOK         prometheus.Gauge
	reloadTime       prometheus.Gauge
	configInfo       *prometheus.GaugeVec
	auditImages      *prometheus.GaugeVec
	audits           *prometheus.CounterVec
	auditTime        prometheus.Gauge
	preverifyEvents  *prometheus.CounterVec
	preverified      *prometheus.CounterVec
}

// latencyBuckets span a cached answer (sub-millisecond) to a verification
// that misses Gatekeeper's 3 s deadline.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 2.5, 3, 5, 10, 30}

// NewMetrics returns the metrics, registered with the Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vouch_http_request_duration_seconds", Help: "Time to answer an HTTP request, by endpoint and status code.", Buckets: latencyBuckets,
		}, []string{"endpoint", "code"}),
		requestsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vouch_http_requests_in_flight", Help: "HTTP requests being answered.",
		}),
		verifications: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vouch_verification_duration_seconds", Help: "Time of one verification of a subject's graph (cache misses only), by verdict.", Buckets: latencyBuckets,
		}, []string{"verdict"}),
		verifiers: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vouch_verifier_duration_seconds", Help: "Time of one verifier's check of one artifact, by verifier and outcome.", Buckets: latencyBuckets,
		}, []string{"verifier", "outcome"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_answers_total", Help: "Answers on images, by outcome: allowed, denied, undecided, timeout, invalid.",
		}, []string{"outcome"}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_cache_lookups_total", Help: "Cache lookups, by kind (verdict, tag) and result (hit, miss).",
		}, []string{"kind", "result"}),
		tagRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_tag_refreshes_total", Help: "Background resolutions of tags whose cached digest was past --tag-ttl, by result (ok, error).",
		}, []string{"result"}),
		registryRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_registry_requests_total", Help: "HTTP responses from registries, by host, method and status code.",
		}, []string{"host", "method", "code"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_redis_errors_total", Help: "Failed Redis operations, by operation (get, set).",
		}, []string{"op"}),
		redisOutages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vouch_redis_outages_total", Help: "Times Redis became unavailable (vouch_redis_available went to 0), a Sentinel failover included; counts outages shorter than a scrape interval.",
		}),
		redisLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_redis_lookups_total", Help: "Reads that Redis answered after a local miss, by result (hit: a valid entry, miss); failed reads are in vouch_redis_errors_total.",
		}, []string{"result"}),
		cacheRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_cache_rejected_entries_total", Help: "Entries read from Redis and ignored because they failed authentication, by reason (unsigned, version, truncated, mac).",
		}, []string{"reason"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_config_reloads_total", Help: "Changes of the configuration or its trust material seen while serving, by result: success (swapped in), failure (rejected; the last good configuration serves).",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vouch_config_last_reload_successful", Help: "1 when the latest configuration seen serves, 0 when it was rejected and an older one serves.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vouch_config_last_reload_success_timestamp_seconds", Help: "When the configuration that serves was loaded, in seconds since the Unix epoch.",
		}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vouch_config_info", Help: "1 for the configuration that serves, labelled with the prefix of its policy hash (the hash verdicts are cached under).",
		}, []string{"policy_hash"}),
		auditImages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vouch_audit_images", Help: "Containers of running Pods at the last successful audit (vouch serve --audit-interval), by namespace and verdict (allowed, denied, undecided).",
		}, []string{"namespace", "verdict"}),
		audits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_audits_total", Help: "Audits of the running Pods, by result: success (verdicts published), failure (Pods could not be listed or a PolicyReport not written).",
		}, []string{"result"}),
		auditTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vouch_audit_last_success_timestamp_seconds", Help: "When the last successful audit of the running Pods ended, in seconds since the Unix epoch.",
		}),
		preverifyEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_preverify_events_total", Help: "Images named for pre-verification, by source (registry, subjects, workload) and result: queued, duplicate (already queued), dropped (the queue was full), ignored (an event that names nothing to verify), invalid (a request that could not be read).",
		}, []string{"source", "result"}),
		preverified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_preverifications_total", Help: "Pre-verifications done (each replaces the cached verdict), by source and verdict.",
		}, []string{"source", "verdict"}),
	}
	for _, result := range []string{"hit", "miss"} {
		m.redisLookups.WithLabelValues(result)
	}
	for _, reason := range cache.RejectReasons() {
		m.cacheRejected.WithLabelValues(reason)
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestsInFlight, m.verifications, m.verifiers, m.answers, m.cacheLookups, m.tagRefreshes, m.registryRequests, m.redisErrors,
		m.redisOutages, m.redisLookups, m.cacheRejected,
		m.reloads, m.reloadOK, m.reloadTime, m.configInfo,
		m.auditImages, m.audits, m.auditTime,
		m.preverifyEvents, m.preverified,
	)
	return m
}

// Audit records an audit of the running Pods: its report, or the error
// that stopped it (the gauges then keep the last successful audit's
// figures).
func (m *Metrics) Audit(r *audit.Report, err error) {
	if err != nil || r == nil {
		m.audits.WithLabelValues("failure").Inc()
		return
	}
	m.audits.WithLabelValues("success").Inc()
	m.auditImages.Reset()
	for _, w := range r.Workloads {
		for _, im := range w.Images {
			m.auditImages.WithLabelValues(w.Namespace, string(im.Verdict)).Inc()
		}
	}
	m.auditTime.SetToCurrentTime()
}

// PreverifyEvent counts one image named for pre-verification, or one
// event that named none, by source and result (preverify's
// QueueOptions.OnEnqueue and HandlerOptions.OnEvent).
func (m *Metrics) PreverifyEvent(source, result string) {
	m.preverifyEvents.WithLabelValues(source, result).Inc()
}

// Preverified counts one pre-verification done (preverify's
// QueueOptions.OnDone).
func (m *Metrics) Preverified(source string, verdict vouch.Verdict) {
	m.preverified.WithLabelValues(source, string(verdict)).Inc()
}

// PreverifyQueue exports queued, the jobs waiting, as the gauge
// vouch_preverify_queue_length.
func (m *Metrics) PreverifyQueue(queued func() int) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vouch_preverify_queue_length", Help: "Images waiting for pre-verification (at most --preverify-queue).",
	}, func() float64 { return float64(queued()) }))
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Registry is where the metrics are registered, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// EngineHooks returns the hooks that feed the engine's metrics, and
// inFlight, when set, as the gauge of verifications in progress.
func (m *Metrics) EngineHooks(inFlight func() int64) engine.Hooks {
	if inFlight != nil {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vouch_verifications_in_flight", Help: "Verifications of subjects in progress.",
		}, func() float64 { return float64(inFlight()) }))
	}
	// The counters of every answer are resolved once, not on each call
	// (a lookup by labels per image asked).
	type lookups struct{ hit, miss prometheus.Counter }
	cacheLookups := map[string]lookups{}
	for _, kind := range []string{"verdict", "tag"} {
		cacheLookups[kind] = lookups{m.cacheLookups.WithLabelValues(kind, "hit"), m.cacheLookups.WithLabelValues(kind, "miss")}
	}
	answers := map[string]prometheus.Counter{}
	for _, outcome := range []string{string(vouch.Allowed), string(vouch.Denied), string(vouch.Undecided), "timeout", "invalid"} {
		answers[outcome] = m.answers.WithLabelValues(outcome)
	}
	return engine.Hooks{
		OnCache: func(kind string, hit bool) {
			l, ok := cacheLookups[kind]
			switch {
			case !ok && hit:
				m.cacheLookups.WithLabelValues(kind, "hit").Inc()
			case !ok:
				m.cacheLookups.WithLabelValues(kind, "miss").Inc()
			case hit:
				l.hit.Inc()
			default:
				l.miss.Inc()
			}
		},
		OnVerification: func(v vouch.Verdict, d time.Duration) {
			m.verifications.WithLabelValues(string(v)).Observe(d.Seconds())
		},
		OnAnswer: func(outcome string) {
			if c, ok := answers[outcome]; ok {
				c.Inc()
				return
			}
			m.answers.WithLabelValues(outcome).Inc()
		},
		OnTagRefresh: func(err error) {
			result := "ok"
			if err != nil {
				result = "error"
			}
			m.tagRefreshes.WithLabelValues(result).Inc()
		},
	}
}

// ReloadHooks returns the hooks that feed the configuration metrics:
// vouch_config_reloads_total, vouch_config_last_reload_successful,
// vouch_config_last_reload_success_timestamp_seconds and vouch_config_info.
func (m *Metrics) ReloadHooks() reload.Hooks {
	return reload.Hooks{
		OnServe: func(g *reload.Generation) {
			m.reloadOK.Set(1)
			m.reloadTime.Set(float64(g.Loaded.UnixNano()) / 1e9)
			m.configInfo.Reset()
			m.configInfo.WithLabelValues(reload.Short(g.PolicyHash)).Set(1)
		},
		OnReload: func(err error) {
			result := "success"
			if err != nil {
				result = "failure"
				m.reloadOK.Set(0)
			}
			m.reloads.WithLabelValues(result).Inc()
		},
	}
}

// RegistryResponse counts one registry response; it is the registry
// store's Options.OnResponse.
func (m *Metrics) RegistryResponse(host, method string, status int) {
	m.registryRequests.WithLabelValues(host, method, strconv.Itoa(status)).Inc()
}

// RedisError counts one failed Redis operation; it is the Redis cache's
// Options.OnError.
func (m *Metrics) RedisError(op string, _ error) {
	m.redisErrors.WithLabelValues(op).Inc()
}

// RedisOutage counts one time Redis became unavailable; it is the Redis
// cache's Options.OnUnavailable.
func (m *Metrics) RedisOutage() { m.redisOutages.Inc() }

// RedisLookup counts one read Redis answered, a hit or a miss; it is the
// Redis cache's Options.OnLookup.
func (m *Metrics) RedisLookup(hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	m.redisLookups.WithLabelValues(result).Inc()
}

// CacheRejected counts one entry read from Redis that failed
// authentication; it is the Redis cache's Options.OnRejected.
func (m *Metrics) CacheRejected(reason string) {
	m.cacheRejected.WithLabelValues(reason).Inc()
}

// RedisAvailable exports available as the gauge vouch_redis_available.
func (m *Metrics) RedisAvailable(available func() bool) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vouch_redis_available", Help: "1 while the shared Redis cache answers, 0 while vouch uses its local cache alone.",
	}, func() float64 {
		if available() {
			return 1
		}
		return 0
	}))
}

// Verifier wraps v so that each check is timed in
// vouch_verifier_duration_seconds.
func (m *Metrics) Verifier(v vouch.Verifier) vouch.Verifier {
	return &timedVerifier{Verifier: v, m: m}
}

type timedVerifier struct {
	vouch.Verifier
	m *Metrics
}

func (t *timedVerifier) Verify(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
	start := time.Now()
	res, err := t.Verifier.Verify(ctx, req)
	outcome := string(res.Outcome)
	if err != nil {
		outcome = string(vouch.Errored)
	}
	t.m.verifiers.WithLabelValues(t.Name(), outcome).Observe(time.Since(start).Seconds())
	return res, err
}
