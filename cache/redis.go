package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults of RedisOptions.
const (
	DefaultKeyPrefix     = "vouch:"
	DefaultRedisTimeout  = 250 * time.Millisecond
	DefaultRetryInterval = time.Second
	DefaultMaxValueBytes = 4 << 20
)

// RedisOptions configure a Redis cache: one Redis server (Addr), or the
// master that Redis Sentinels name (SentinelAddrs and MasterName).
type RedisOptions struct {
	// Addr is the Redis server, "host:port". Required unless SentinelAddrs
	// is set; the two exclude each other.
	Addr string
	// SentinelAddrs are Redis Sentinels, "host:port" each, that monitor
	// the master MasterName: the cache asks them where the master is and
	// follows it when they fail it over to a replica. Required unless
	// Addr is set.
	SentinelAddrs []string
	// MasterName is the name under which the Sentinels monitor the
	// master. Required with SentinelAddrs, else unused.
	MasterName string
	// SentinelPassword authenticates to the Sentinels (their
	// requirepass), which may differ from the master's. Optional.
	SentinelPassword string
	// Username and Password authenticate to the Redis server, or to the
	// master and its replicas (Redis AUTH). Optional.
	Username, Password string
	// DB selects the database. Optional; default 0.
	DB int
	// TLS, when set, talks TLS to Redis (and to the Sentinels) with this
	// configuration. Optional; default plain TCP.
	TLS *tls.Config
	// KeyPrefix starts every key vouch writes, so that vouch can share a
	// Redis with others. Optional; default DefaultKeyPrefix.
	KeyPrefix string
	// Timeout bounds each Redis operation, dialing included: a slow Redis
	// costs a request at most this much. Optional; default
	// DefaultRedisTimeout.
	Timeout time.Duration
	// RetryInterval is how often, while Redis is unavailable, one operation
	// tries it again; the others use the local cache alone. Optional;
	// default DefaultRetryInterval.
	RetryInterval time.Duration
	// MaxValueBytes bounds a value written to Redis; larger values stay
	// local. Optional; default DefaultMaxValueBytes.
	MaxValueBytes int
	// Local is the in-process layer asked first. Optional; default
	// NewMemory(MemoryOptions{}).
	Local *Memory
	// Logger receives one line each time Redis becomes unavailable or
	// available again, never one per request. Optional; default
	// slog.Default().
	Logger *slog.Logger
	// OnError, when set, is called for each failed Redis operation (for
	// metrics); op is "get", "set" or "claim". It must not block.
	OnError func(op string, err error)
	// OnUnavailable, when set, is called each time Redis becomes
	// unavailable (Available turns false), for metrics: outages shorter
	// than a scrape interval show there. It must not block.
	OnUnavailable func()
	// OnLookup, when set, is called for each read that Redis answered
	// (not for failures, see OnError): hit when it held a valid entry. It
	// must not block.
	OnLookup func(hit bool)

	// HMACKey authenticates every entry: entries are written with an
	// HMAC-SHA256 under it, bound to their Redis key and expiry, and an
	// entry read without a valid one is a miss (see OnRejected). The
	// replicas sharing Redis share it; at least MinHMACKeyBytes. Required
	// unless InsecureUnauthenticated.
	HMACKey []byte
	// HMACPreviousKey also authenticates entries read, never written: the
	// key the replicas used before HMACKey, while they are rolled to it.
	// Optional.
	HMACPreviousKey []byte
	// InsecureUnauthenticated, with no HMACKey, writes entries as they are
	// and trusts every entry read: whoever can write to Redis then decides
	// which images are allowed. Optional; default false.
	InsecureUnauthenticated bool
	// OnRejected, when set, is called for each entry read from Redis that
	// fails authentication (for metrics), with one of RejectReasons. It
	// must not block. The entry is a miss; the local layer is untouched.
	OnRejected func(reason string)
}

// Redis is a Cache shared by the replicas of a server: an in-process Memory
// asked first, then a Redis server. Values found in Redis are kept locally
// for the time Redis has left on them.
//
// When Redis fails, Redis logs it once, counts the failure (OnError), and
// keeps answering from the local layer; once per RetryInterval one request
// tries Redis again, and the first success logs that Redis is back. The
// client reconnects by itself; behind Sentinels, it asks them for the
// master on each new connection and drops its connections to the old
// master when they announce a failover, so that a failover is an outage
// of a few seconds like any other.
//
// Every entry written to Redis is sealed with an HMAC-SHA256 under HMACKey
// over its Redis key, its expiry and its value; an entry read that does not
// open under HMACKey or HMACPreviousKey (forged, copied from another key,
// cut, kept past its expiry by a changed TTL, sealed under another key) is
// a miss, counted (OnRejected) and logged, the first at once and then at
// most once per ten minutes.
type Redis struct {
	opts   RedisOptions
	target string // what log lines and errors call Redis
	local  *Memory
	client *redis.Client
	log    *slog.Logger

	down      atomic.Bool
	nextRetry atomic.Int64 // unix nanoseconds
	stateMu   sync.Mutex   // serialises state changes and their log lines

	keys          *macKeys // nil: InsecureUnauthenticated
	rejected      atomic.Int64
	rejectLogMu   sync.Mutex
	nextRejectLog time.Time
	rejectLogged  int64 // rejected when the last line was logged
}

// rejectLogInterval is the least time between two log lines about rejected
// entries: the first is logged at once, later ones are counted in the next
// line.
const rejectLogInterval = 10 * time.Minute

// NewRedis returns a Redis cache for opts. It does not contact Redis: an
// unavailable Redis is not an error, only a slower path to the same misses.
func NewRedis(opts RedisOptions) (*Redis, error) {
	target, err := checkRedisTarget(&opts)
	if err != nil {
		return nil, err
	}
	var keys *macKeys
	switch {
	case len(opts.HMACKey) == 0 && len(opts.HMACPreviousKey) != 0:
		return nil, errors.New("cache: RedisOptions.HMACPreviousKey needs HMACKey")
	case len(opts.HMACKey) == 0 && !opts.InsecureUnauthenticated:
		return nil, errors.New("cache: RedisOptions.HMACKey is required (or InsecureUnauthenticated): without it whoever can write to Redis decides which images are allowed")
	case len(opts.HMACKey) != 0 && opts.InsecureUnauthenticated:
		return nil, errors.New("cache: RedisOptions.HMACKey and InsecureUnauthenticated exclude each other")
	case len(opts.HMACKey) != 0:
		var err error
		if keys, err = newMACKeys(opts.HMACKey, opts.HMACPreviousKey); err != nil {
			return nil, err
		}
		opts.HMACKey, opts.HMACPreviousKey = nil, nil // kept in keys only
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.MaxValueBytes <= 0 {
		opts.MaxValueBytes = DefaultMaxValueBytes
	}
	if opts.Local == nil {
		opts.Local = NewMemory(MemoryOptions{})
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var client *redis.Client
	if len(opts.SentinelAddrs) == 0 {
		client = redis.NewClient(&redis.Options{
			Addr:         opts.Addr,
			Username:     opts.Username,
			Password:     opts.Password,
			DB:           opts.DB,
			TLSConfig:    opts.TLS,
			DialTimeout:  opts.Timeout,
			ReadTimeout:  opts.Timeout,
			WriteTimeout: opts.Timeout,
			// Callers' deadlines bound each operation as well.
			ContextTimeoutEnabled: true,
			// A failed operation is reported, not retried: the request goes
			// on with the local cache and the next one may try again.
			MaxRetries:    -1,
			DialerRetries: 1,
			// RESP2: plain GET/SET need nothing newer, and no handshake
			// feature probing (CLIENT MAINT_NOTIFICATIONS) on each dial.
			Protocol:                 2,
			DisableIdentity:          true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
	} else {
		// The same choices, for the master and the Sentinels alike (the
		// failover client has maintenance notifications off). Each new
		// connection asks a Sentinel for the master first, within the
		// operation's deadline; a "+switch-master" announcement closes the
		// connections to any other address.
		client = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            opts.MasterName,
			SentinelAddrs:         opts.SentinelAddrs,
			SentinelPassword:      opts.SentinelPassword,
			Username:              opts.Username,
			Password:              opts.Password,
			DB:                    opts.DB,
			TLSConfig:             opts.TLS,
			DialTimeout:           opts.Timeout,
			ReadTimeout:           opts.Timeout,
			WriteTimeout:          opts.Timeout,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1,
			DialerRetries:         1,
			Protocol:              2,
			DisableIdentity:       true,
		})
	}
	return &Redis{opts: opts, target: target, local: opts.Local, client: client, log: opts.Logger, keys: keys}, nil
}

// GetLocal implements Local: the local layer alone, which Get reads first.
func (r *Redis) GetLocal(key string) ([]byte, bool) {
	return r.local.GetLocal(key)
}

// Get implements Cache: the local layer first, then Redis.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool) {
	if v, ok := r.local.Get(ctx, key); ok {
		return v, true
	}
	if ctx.Err() != nil || !r.try() {
		return nil, false
	}
	return r.getRedis(ctx, key)
}

// getRedis reads key from Redis and, when it holds a valid entry, keeps
// it in the local layer for the time it has left.
func (r *Redis) getRedis(ctx context.Context, key string) ([]byte, bool) {
	opCtx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	rkey := r.opts.KeyPrefix + key
	pipe := r.client.Pipeline()
	get := pipe.Get(opCtx, rkey)
	ttl := pipe.PTTL(opCtx, rkey)
	_, err := pipe.Exec(opCtx)
	if errors.Is(err, redis.Nil) {
		r.succeeded()
		r.lookup(false)
		return nil, false
	}
	if err != nil {
		// The caller giving up is not Redis failing.
		if ctx.Err() == nil {
			r.failed("get", err)
		}
		return nil, false
	}
	r.succeeded()
	value, left, ok := r.open(key, rkey, get, ttl)
	r.lookup(ok)
	if !ok {
		return nil, false
	}
	r.local.Set(opCtx, key, value, left)
	return value, true
}

// GetShared implements Shared: Get without the local layer.
func (r *Redis) GetShared(ctx context.Context, key string) ([]byte, bool) {
	if ctx.Err() != nil || !r.try() {
		return nil, false
	}
	return r.getRedis(ctx, key)
}

// Claim implements Shared with SET NX PX under the key prefix and
// "claim:": a claim carries no value to authenticate, and a forged one
// only delays the claimed work until ttl passes. While Redis is
// unavailable, or when it fails, every caller holds the claim.
func (r *Redis) Claim(ctx context.Context, key string, ttl time.Duration) bool {
	if ttl <= 0 || ctx.Err() != nil || !r.try() {
		return true
	}
	opCtx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	ok, err := r.client.SetNX(opCtx, r.opts.KeyPrefix+"claim:"+key, "1", ttl).Result()
	if err != nil {
		if ctx.Err() == nil {
			r.failed("claim", err)
		}
		return true
	}
	r.succeeded()
	return ok
}

// open returns the value of a GET and the time it has left, checked: its
// MAC (unless InsecureUnauthenticated), its expiry and its size.
func (r *Redis) open(key, rkey string, get *redis.StringCmd, ttl *redis.DurationCmd) ([]byte, time.Duration, bool) {
	value, err := get.Bytes()
	left := ttl.Val()
	if err != nil || left <= 0 {
		return nil, 0, false
	}
	if r.keys != nil {
		v, expires, reason := r.keys.open(rkey, value)
		if reason != "" {
			r.reject(key, value, reason)
			return nil, 0, false
		}
		value, left = v, min(left, time.Until(expires))
		if left <= 0 {
			return nil, 0, false
		}
	}
	if len(value) > r.opts.MaxValueBytes {
		return nil, 0, false
	}
	return value, left, true
}

func (r *Redis) lookup(hit bool) {
	if r.opts.OnLookup != nil {
		r.opts.OnLookup(hit)
	}
}

// Set implements Cache: the local layer, and Redis unless it is down. A
// request that has run out of time still gets its value written, within
// the Redis timeout.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	r.local.Set(ctx, key, value, ttl)
	if len(value) > r.opts.MaxValueBytes || !r.try() {
		return
	}
	rkey := r.opts.KeyPrefix + key
	if r.keys != nil {
		value = r.keys.seal(rkey, value, time.Now().Add(ttl))
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Timeout)
	defer cancel()
	if err := r.client.Set(ctx, rkey, value, ttl).Err(); err != nil {
		r.failed("set", err)
		return
	}
	r.succeeded()
}

// Rejected returns the number of entries read from Redis that failed
// authentication.
func (r *Redis) Rejected() int64 { return r.rejected.Load() }

// Available reports whether the last Redis operation succeeded (true until
// one fails).
func (r *Redis) Available() bool { return !r.down.Load() }

// Ping checks that Redis answers, within the Redis timeout.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", r.target, err)
	}
	return nil
}

// Close closes the connections to Redis.
func (r *Redis) Close() error { return r.client.Close() }

// try reports whether this operation should go to Redis: always while it is
// up; while it is down, one operation per RetryInterval.
func (r *Redis) try() bool {
	if !r.down.Load() {
		return true
	}
	now := time.Now().UnixNano()
	next := r.nextRetry.Load()
	return now >= next && r.nextRetry.CompareAndSwap(next, now+r.opts.RetryInterval.Nanoseconds())
}

func (r *Redis) failed(op string, err error) {
	if r.opts.OnError != nil {
		r.opts.OnError(op, err)
	}
	if r.down.Load() {
		return
	}
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	if r.down.Load() {
		return
	}
	r.nextRetry.Store(time.Now().Add(r.opts.RetryInterval).UnixNano())
	r.down.Store(true)
	if r.opts.OnUnavailable != nil {
		r.opts.OnUnavailable()
	}
	r.log.Warn("redis unavailable: using the local cache only until it is back", "addr", r.target, "op", op, "error", err.Error())
}

func (r *Redis) succeeded() {
	if !r.down.Load() {
		return
	}
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	if !r.down.Load() {
		return
	}
	r.down.Store(false)
	r.log.Info("redis available again", "addr", r.target)
}

// reject counts an entry read from Redis under key that failed
// authentication, and logs it unless a line was logged less than
// rejectLogInterval ago. The line names the key and the entry's size and
// first bytes, never more of the entry nor anything of the keys.
func (r *Redis) reject(key string, entry []byte, reason string) {
	n := r.rejected.Add(1)
	if r.opts.OnRejected != nil {
		r.opts.OnRejected(reason)
	}
	now := time.Now()
	r.rejectLogMu.Lock()
	if now.Before(r.nextRejectLog) {
		r.rejectLogMu.Unlock()
		return
	}
	r.nextRejectLog = now.Add(rejectLogInterval)
	since := n - r.rejectLogged
	r.rejectLogged = n
	r.rejectLogMu.Unlock()
	r.log.Warn("ignored a Redis cache entry that failed authentication: something other than the replicas writes to Redis, or they do not share one HMAC key; further ones are counted, and logged at most every "+rejectLogInterval.String(),
		"addr", r.target, "reason", reason, "key", shorten(key, 200), "entryBytes", len(entry),
		"entryPrefix", strconv.QuoteToASCII(string(entry[:min(len(entry), 12)])), "rejectedSinceLastLine", since)
}

// checkRedisTarget checks that opts name one Redis server or a master
// behind Sentinels, and returns a description of it for log lines.
func checkRedisTarget(opts *RedisOptions) (string, error) {
	switch {
	case opts.Addr != "" && len(opts.SentinelAddrs) > 0:
		return "", errors.New("cache: RedisOptions.Addr and SentinelAddrs exclude each other: name one Redis server, or the Sentinels that know the master")
	case opts.Addr == "" && len(opts.SentinelAddrs) == 0:
		return "", errors.New("cache: RedisOptions.Addr (or SentinelAddrs and MasterName) is required")
	case opts.Addr != "":
		if opts.MasterName != "" || opts.SentinelPassword != "" {
			return "", errors.New("cache: RedisOptions.MasterName and SentinelPassword need SentinelAddrs")
		}
		return opts.Addr, nil
	case opts.MasterName == "":
		return "", errors.New("cache: RedisOptions.SentinelAddrs needs MasterName, the name under which the Sentinels monitor the master")
	}
	for _, a := range opts.SentinelAddrs {
		if err := checkHostPort(a); err != nil {
			return "", fmt.Errorf("cache: RedisOptions.SentinelAddrs: %w", err)
		}
	}
	return fmt.Sprintf("master %q via sentinels %s", opts.MasterName, strings.Join(opts.SentinelAddrs, ",")), nil
}

// checkHostPort checks that addr is "host:port" with a host and a port
// number.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT: %w", addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); host == "" || err != nil || n == 0 {
		return fmt.Errorf("%q is not HOST:PORT with a host and a port number", addr)
	}
	return nil
}

// shorten returns s cut to at most n bytes, marked when cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
