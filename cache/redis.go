package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
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

// RedisOptions configure a Redis cache.
type RedisOptions struct {
	// Addr is the Redis server, "host:port". Required.
	Addr string
	// Username and Password authenticate (Redis AUTH). Optional.
	Username, Password string
	// DB selects the database. Optional; default 0.
	DB int
	// TLS, when set, talks TLS to Redis with this configuration. Optional;
	// default plain TCP.
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
	// metrics); op is "get" or "set". It must not block.
	OnError func(op string, err error)
}

// Redis is a Cache shared by the replicas of a server: an in-process Memory
// asked first, then a Redis server. Values found in Redis are kept locally
// for the time Redis has left on them.
//
// When Redis fails, Redis logs it once, counts the failure (OnError), and
// keeps answering from the local layer; once per RetryInterval one request
// tries Redis again, and the first success logs that Redis is back. The
// client reconnects by itself.
type Redis struct {
	opts   RedisOptions
	local  *Memory
	client *redis.Client
	log    *slog.Logger

	down      atomic.Bool
	nextRetry atomic.Int64 // unix nanoseconds
	stateMu   sync.Mutex   // serialises state changes and their log lines
}

// NewRedis returns a Redis cache for opts. It does not contact Redis: an
// unavailable Redis is not an error, only a slower path to the same misses.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if opts.Addr == "" {
		return nil, errors.New("cache: RedisOptions.Addr is required")
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
	client := redis.NewClient(&redis.Options{
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
		// A failed operation is reported, not retried: the request goes on
		// with the local cache and the next one may try again.
		MaxRetries:    -1,
		DialerRetries: 1,
		// RESP2: plain GET/SET need nothing newer, and no handshake
		// feature probing (CLIENT MAINT_NOTIFICATIONS) on each dial.
		Protocol:                 2,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return &Redis{opts: opts, local: opts.Local, client: client, log: opts.Logger}, nil
}

// Get implements Cache: the local layer first, then Redis.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool) {
	if v, ok := r.local.Get(ctx, key); ok {
		return v, true
	}
	if ctx.Err() != nil || !r.try() {
		return nil, false
	}
	opCtx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	pipe := r.client.Pipeline()
	get := pipe.Get(opCtx, r.opts.KeyPrefix+key)
	ttl := pipe.PTTL(opCtx, r.opts.KeyPrefix+key)
	_, err := pipe.Exec(opCtx)
	if errors.Is(err, redis.Nil) {
		r.succeeded()
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
	value, err := get.Bytes()
	left := ttl.Val()
	if err != nil || left <= 0 || len(value) > r.opts.MaxValueBytes {
		return nil, false
	}
	r.local.Set(opCtx, key, value, left)
	return value, true
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
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Timeout)
	defer cancel()
	if err := r.client.Set(ctx, r.opts.KeyPrefix+key, value, ttl).Err(); err != nil {
		r.failed("set", err)
		return
	}
	r.succeeded()
}

// Available reports whether the last Redis operation succeeded (true until
// one fails).
func (r *Redis) Available() bool { return !r.down.Load() }

// Ping checks that Redis answers, within the Redis timeout.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", r.opts.Addr, err)
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
	r.log.Warn("redis unavailable: using the local cache only until it is back", "addr", r.opts.Addr, "op", op, "error", err.Error())
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
	r.log.Info("redis available again", "addr", r.opts.Addr)
}
