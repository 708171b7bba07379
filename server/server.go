// Package server is vouch's HTTPS server: the Gatekeeper external data
// provider (server/gatekeeper) and the Kubernetes admission webhook
// (server/admission) over one engine (server/engine), with TLS 1.3 only,
// optional mutual TLS, certificates reloaded when their files change, a
// time budget and a size bound on every request, health and readiness
// endpoints, Prometheus metrics, JSON logs with request ids, and a graceful
// shutdown.
//
// Endpoints (docs/serving.md):
//
//	POST /gatekeeper/v1/verify   (and /ratify/gatekeeper/v1/verify)
//	POST /gatekeeper/v1/mutate   (and /ratify/gatekeeper/v1/mutate)
//	POST /admission/v1/validate
//	POST /admission/v1/mutate
//	POST /events/v1/registry, /events/v1/subjects (with Options.Events)
//	GET  /healthz, /readyz, /metrics
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/server/admission"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/gatekeeper"
)

// Defaults of Options.
const (
	// DefaultBudget is below Gatekeeper's 3 s webhook timeout, leaving it
	// time to evaluate its policy around vouch's answer.
	DefaultBudget          = 2500 * time.Millisecond
	DefaultMaxBodyBytes    = 1 << 20
	DefaultShutdownTimeout = 15 * time.Second
)

// Decider is what the endpoints ask: the verdict on an image and its
// digest, under a namespace's policy. *engine.Engine is one.
type Decider interface {
	// Verify returns the report on image under namespace's policy; an
	// error means vouch could not decide (admission.Decider).
	Verify(ctx context.Context, namespace, image string) (*vouch.Report, error)
	// VerifyCached is Verify that also returns the id of the cached
	// verdict the report comes from, 0 when it is not cached; the
	// Gatekeeper provider encodes each cached verdict once
	// (gatekeeper.CachingDecider).
	VerifyCached(ctx context.Context, namespace, image string) (*vouch.Report, uint64, error)
	// Resolve pins image to its digest, for the mutating endpoints.
	Resolve(ctx context.Context, namespace, image string) (vouch.Reference, error)
}

var _ Decider = (*engine.Engine)(nil)

// Options configure a Server.
type Options struct {
	// Addr is where ListenAndServe listens for HTTPS, "host:port".
	// Required for ListenAndServe.
	Addr string
	// MetricsAddr, when set, is a second listener, plain HTTP, that serves
	// /metrics, /healthz and /readyz only: for Prometheus and kubelet
	// probes, which present no client certificate when ClientCAFile
	// requires one on Addr. Optional.
	MetricsAddr string
	// TLS names the certificate, key and optional client CA files.
	// Required: the server speaks HTTPS only.
	TLS TLSFiles
	// Decider decides for every endpoint: an *engine.Engine. Required.
	Decider Decider
	// Budget bounds the time to answer one request: what is not decided by
	// then is answered as a timeout (Gatekeeper) or denied (admission).
	// Optional; default DefaultBudget.
	Budget time.Duration
	// MaxBodyBytes bounds a request body. Optional; default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxKeys bounds the keys of one Gatekeeper request. Optional; default
	// gatekeeper.DefaultMaxKeys.
	MaxKeys int
	// Concurrency bounds the images decided at once for one request.
	// Optional; default 16.
	Concurrency int
	// GatekeeperGraph puts the whole report tree in every Gatekeeper verify
	// value (gatekeeper.Options.Graph). Optional; default false: the value
	// carries the verdict, the reason and the nodes that failed, and a
	// request asks for the graph with "?graph=true".
	GatekeeperGraph bool
	// ShutdownTimeout bounds the wait for requests in flight when the
	// server stops. Optional; default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// RequestContext, when set, derives each decision request's context
	// before its handler runs: reload.Holder.Pin pins the configuration
	// there, so that every image of a request is decided under the one
	// configuration that served when the request arrived. Optional.
	RequestContext func(context.Context) context.Context
	// AdmissionCredentials, when set, gives each admission request the
	// registry credentials of its pod's image pull secrets
	// (admission.Options.Credentials; server/kube's PullSecrets, with
	// --kubernetes-pull-secrets). Optional.
	AdmissionCredentials admission.CredentialsFunc
	// Events, when set, serves the pre-verification events endpoints
	// (/events/v1/..., preverify.Handler, which authenticates callers by
	// bearer token) on the HTTPS listener, and on EventsAddr. Optional.
	Events http.Handler
	// EventsAddr, when set with Events, is a third listener, HTTPS with the
	// same certificate but no client certificate required, that serves
	// the events endpoints and /healthz only: for registries that cannot
	// present Gatekeeper's client certificate. Optional.
	EventsAddr string
	// Metrics are updated and served. Optional; default NewMetrics().
	Metrics *Metrics
	// Logger logs requests and events. Optional; default slog.Default(),
	// with request ids added (see NewLogger).
	Logger *slog.Logger
}

// Server serves vouch's decisions over HTTPS.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	tls     *certReloader
	main    http.Handler
	side    http.Handler
	events  http.Handler
	ready   atomic.Bool
}

// New returns a Server for opts, after loading its TLS files. It is not
// ready (/readyz answers 503) until SetReady(true).
func New(opts Options) (*Server, error) {
	if opts.Decider == nil {
		return nil, errors.New("server: Options.Decider is required")
	}
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := slog.New(WithRequestID(opts.Logger.Handler()))
	s := &Server{opts: opts, log: log, metrics: opts.Metrics}
	var err error
	if s.tls, err = newCertReloader(opts.TLS, log); err != nil {
		return nil, err
	}
	provider, err := gatekeeper.New(gatekeeper.Options{Decider: opts.Decider, MaxKeys: opts.MaxKeys, Concurrency: opts.Concurrency, Logger: log, TraceID: RequestID, Graph: opts.GatekeeperGraph})
	if err != nil {
		return nil, err
	}
	webhook, err := admission.New(admission.Options{Decider: opts.Decider, Concurrency: opts.Concurrency, Logger: log, Credentials: opts.AdmissionCredentials})
	if err != nil {
		return nil, err
	}

	main := http.NewServeMux()
	for _, prefix := range []string{"/gatekeeper/v1", "/ratify/gatekeeper/v1"} {
		main.Handle(prefix+"/verify", s.decision("gatekeeper-verify", provider.Verify))
		main.Handle(prefix+"/mutate", s.decision("gatekeeper-mutate", provider.Mutate))
	}
	main.Handle("/admission/v1/validate", s.decision("admission-validate", webhook.Validate))
	main.Handle("/admission/v1/mutate", s.decision("admission-mutate", webhook.Mutate))
	side := http.NewServeMux()
	if opts.Events != nil {
		events := http.NewServeMux()
		for _, mux := range []*http.ServeMux{main, events} {
			mux.Handle("/events/", s.eventsEndpoint(opts.Events))
			mux.HandleFunc("GET /healthz", healthz)
		}
		s.events = events
	}
	for _, mux := range []*http.ServeMux{main, side} {
		if mux != main || opts.Events == nil {
			mux.HandleFunc("GET /healthz", healthz)
		}
		mux.HandleFunc("GET /readyz", s.readyz)
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	s.main, s.side = main, side
	return s, nil
}

// Handler returns the handler of the HTTPS listener, for callers that run
// their own http.Server.
func (s *Server) Handler() http.Handler { return s.main }

// TLSConfig returns the HTTPS listener's TLS configuration: TLS 1.3 only,
// the current certificate from the files, client certificates verified when
// a client CA file is set.
func (s *Server) TLSConfig() *tls.Config { return s.tls.config() }

// SetReady sets what /readyz answers: ready once configuration and trust
// material are loaded, not ready while shutting down.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// decision wraps a decision endpoint: request id, time budget, body bound,
// metrics and a log line.
func (s *Server) decision(endpoint string, h http.HandlerFunc) http.Handler {
	// The histogram of the usual answer, resolved once.
	ok := s.metrics.requests.WithLabelValues(endpoint, "200")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r)
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		if s.opts.RequestContext != nil {
			ctx = s.opts.RequestContext(ctx)
		}
		ctx, cancel := context.WithTimeout(ctx, s.opts.Budget)
		defer cancel()
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		s.metrics.requestsInFlight.Inc()
		h(rec, r.WithContext(ctx))
		s.metrics.requestsInFlight.Dec()
		elapsed := time.Since(start)
		if rec.status == http.StatusOK {
			ok.Observe(elapsed.Seconds())
		} else {
			s.metrics.requests.WithLabelValues(endpoint, strconv.Itoa(rec.status)).Observe(elapsed.Seconds())
		}
		level := slog.LevelInfo
		if rec.status >= 400 {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(ctx, level, "request",
			slog.String("endpoint", endpoint), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Float64("seconds", elapsed.Seconds()), slog.String("remote", r.RemoteAddr))
	})
}

// eventsEndpoint wraps the events endpoints: request id, metrics and a
// log line. They answer at once (the work is queued), so no budget
// applies; the handler bounds its bodies itself.
func (s *Server) eventsEndpoint(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r)
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r.WithContext(ctx))
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues("events", strconv.Itoa(rec.status)).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if rec.status >= 400 {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(ctx, level, "request",
			slog.String("endpoint", "events"), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Float64("seconds", elapsed.Seconds()), slog.String("remote", r.RemoteAddr))
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Serve serves HTTPS on ln until ctx ends, then stops accepting, marks the
// server not ready and waits (up to ShutdownTimeout) for the requests in
// flight to be answered.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer(s.main)
	srv.TLSConfig = s.tls.config()
	return s.run(ctx, srv, func() error { return srv.ServeTLS(ln, "", "") })
}

// ServeMetrics serves /metrics, /healthz and /readyz over plain HTTP on ln
// until ctx ends.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer(s.side)
	return s.run(ctx, srv, func() error { return srv.Serve(ln) })
}

// ServeEvents serves the events endpoints and /healthz over HTTPS on ln,
// without requiring client certificates, until ctx ends.
func (s *Server) ServeEvents(ctx context.Context, ln net.Listener) error {
	if s.events == nil {
		return errors.New("server: no Options.Events to serve")
	}
	srv := s.httpServer(s.events)
	srv.TLSConfig = s.tls.configFor(false)
	return s.run(ctx, srv, func() error { return srv.ServeTLS(ln, "", "") })
}

// ListenAndServe listens on Addr (and MetricsAddr, and EventsAddr) and
// serves until ctx ends; see Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if s.opts.Addr == "" {
		return errors.New("server: Options.Addr is required")
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	// When one listener fails, the other stops too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	n := 1
	if s.opts.MetricsAddr != "" {
		mln, err := net.Listen("tcp", s.opts.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("server: metrics listener: %w", err)
		}
		n++
		go func() {
			err := s.ServeMetrics(ctx, mln)
			cancel()
			errs <- err
		}()
	}
	if s.opts.EventsAddr != "" && s.events != nil {
		eln, err := net.Listen("tcp", s.opts.EventsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("server: events listener: %w", err)
		}
		n++
		go func() {
			err := s.ServeEvents(ctx, eln)
			cancel()
			errs <- err
		}()
	}
	s.log.Info("serving", "addr", ln.Addr().String(), "metricsAddr", s.opts.MetricsAddr, "eventsAddr", s.opts.EventsAddr, "mutualTLS", s.opts.TLS.ClientCAFile != "", "budget", s.opts.Budget.String())
	go func() {
		err := s.Serve(ctx, ln)
		cancel()
		errs <- err
	}()
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.opts.Budget + 10*time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// TLS handshake failures (a client without a certificate, probes)
		// are logged at debug level.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

func (s *Server) run(ctx context.Context, srv *http.Server, serve func() error) error {
	errs := make(chan error, 1)
	go func() { errs <- serve() }()
	select {
	case err := <-errs:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.SetReady(false)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	<-errs // http.ErrServerClosed
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}
