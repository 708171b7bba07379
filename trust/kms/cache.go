// Package kms fetches trust material from key-management services and
// keeps it: cosign public keys named by KMS URIs (awskms://, gcpkms://,
// azurekms://, hashivault://, through sigstore/sigstore's KMS packages) and
// the certificates of Azure Key Vault (its REST API, authenticated with
// Azure workload identity or the other credentials of azidentity). A Cache
// fetches each URI once when vouch starts (failing closed when it cannot),
// hands the material to vouch's config package from memory (trust.Vault),
// refreshes it on an interval, and keeps the last good value when a refresh
// fails; what the service says is gone (a deleted or disabled key or
// certificate) is dropped at the refresh that sees it.
//
// The package links the AWS, Google Cloud, Azure and Vault client
// libraries: cmd/vouch links it only when built with -tags kms
// (docs/key-management.md).
package kms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vouch-project/vouch/trust"
)

// MaxMaterialBytes bounds the material of one URI: a public key or a
// certificate (with its chain) is a few KiB.
const MaxMaterialBytes = 1 << 20

// DefaultRefresh is how often a Cache refreshes by default.
const DefaultRefresh = time.Hour

// DefaultTimeout bounds one fetch by default.
const DefaultTimeout = 30 * time.Second

// ErrGone marks a fetch that the service answered definitively: the key or
// certificate does not exist (any more), or is disabled. A Cache drops the
// material then, instead of keeping the last good value. It is
// trust.ErrGone, which vouch's config package checks.
var ErrGone = trust.ErrGone

// Fetcher fetches the PEM material a URI names (trust.Vault explains the
// URIs). Errors wrap ErrGone when the service says the material is gone.
type Fetcher interface {
	Fetch(ctx context.Context, uri string) ([]byte, error)
}

// FetcherFunc adapts a function to Fetcher.
type FetcherFunc func(ctx context.Context, uri string) ([]byte, error)

// Fetch calls f.
func (f FetcherFunc) Fetch(ctx context.Context, uri string) ([]byte, error) { return f(ctx, uri) }

// Cache holds the material of URIs fetched through a Fetcher. It
// implements trust.Vault; it is safe for concurrent use. Create it with
// NewCache.
type Cache struct {
	fetcher  Fetcher
	interval time.Duration
	timeout  time.Duration
	logger   *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is what the Cache knows of one URI.
type entry struct {
	// data is the last good material; nil when never fetched or gone.
	data []byte
	// gone is set when the service said the material is gone.
	gone bool
	// err is the last fetch's error, nil after a good one.
	err error
	// fetched is when data was fetched.
	fetched time.Time
}

// CacheOptions configure a Cache.
type CacheOptions struct {
	// Fetcher fetches the material. Required.
	Fetcher Fetcher
	// Refresh is how often Start refreshes every URI. Optional; default
	// DefaultRefresh.
	Refresh time.Duration
	// Timeout bounds one fetch. Optional; default DefaultTimeout.
	Timeout time.Duration
	// Logger logs failed refreshes (the URI and the error, never a
	// credential). Optional; default slog.Default().
	Logger *slog.Logger
}

// NewCache returns an empty Cache.
func NewCache(o CacheOptions) (*Cache, error) {
	if o.Fetcher == nil {
		return nil, errors.New("kms: CacheOptions.Fetcher is required")
	}
	if o.Refresh < 0 || o.Timeout < 0 {
		return nil, errors.New("kms: negative refresh interval or timeout")
	}
	c := &Cache{fetcher: o.Fetcher, interval: o.Refresh, timeout: o.Timeout, logger: o.Logger, entries: map[string]*entry{}}
	if c.interval == 0 {
		c.interval = DefaultRefresh
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c, nil
}

var _ trust.Vault = (*Cache)(nil)

// fetch fetches uri once, bounded by the Cache's timeout and
// MaxMaterialBytes.
func (c *Cache) fetch(ctx context.Context, uri string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	data, err := c.fetcher.Fetch(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	if len(data) > MaxMaterialBytes {
		return nil, fmt.Errorf("%s: more than %d bytes", uri, MaxMaterialBytes)
	}
	return data, nil
}

// Load makes the Cache hold uris and no others: it fetches each URI it does
// not hold yet (or has never fetched successfully), and forgets the URIs
// not in uris. The error joins the fetches that failed, each naming its
// URI: material never fetched is not trusted (fail closed).
func (c *Cache) Load(ctx context.Context, uris []string) error {
	want := map[string]bool{}
	var todo []string
	c.mu.Lock()
	for _, u := range uris {
		want[u] = true
		if e, ok := c.entries[u]; !ok || (e.data == nil && !e.gone) {
			todo = append(todo, u)
		}
	}
	for u := range c.entries {
		if !want[u] {
			delete(c.entries, u)
		}
	}
	c.mu.Unlock()
	slices.Sort(todo)
	todo = slices.Compact(todo)
	var errs []error
	for _, u := range todo {
		data, err := c.fetch(ctx, u)
		c.mu.Lock()
		e := &entry{data: data, err: err, gone: errors.Is(err, ErrGone), fetched: time.Now()}
		c.entries[u] = e
		c.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Refresh fetches every URI the Cache holds again. A good answer replaces
// the material; an answer that it is gone drops it; any other failure
// keeps the last good material and is logged. It returns the failures,
// joined.
func (c *Cache) Refresh(ctx context.Context) error {
	c.mu.Lock()
	uris := make([]string, 0, len(c.entries))
	for u := range c.entries {
		uris = append(uris, u)
	}
	c.mu.Unlock()
	sort.Strings(uris)
	var errs []error
	for _, u := range uris {
		data, err := c.fetch(ctx, u)
		c.mu.Lock()
		e, ok := c.entries[u]
		if !ok { // forgotten by a Load meanwhile
			c.mu.Unlock()
			continue
		}
		wasGone := e.gone
		switch {
		case err == nil:
			*e = entry{data: data, fetched: time.Now()}
		case errors.Is(err, ErrGone):
			*e = entry{gone: true, err: err, fetched: time.Now()}
		default:
			e.err = err
		}
		kept := e.data != nil
		c.mu.Unlock()
		switch {
		case err == nil:
		case errors.Is(err, ErrGone):
			errs = append(errs, err)
			if !wasGone { // said once, not at every refresh
				c.logger.Warn("key-management material gone; no longer trusted", "uri", u, "error", err.Error())
			}
		default:
			errs = append(errs, err)
			if kept {
				c.logger.Warn("key-management refresh failed; keeping the material fetched before", "uri", u, "error", err.Error())
			} else {
				c.logger.Warn("key-management refresh failed", "uri", u, "error", err.Error())
			}
		}
	}
	return errors.Join(errs...)
}

// Start refreshes the Cache every refresh interval until ctx ends; it
// returns ctx's error.
func (c *Cache) Start(ctx context.Context) error {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			_ = c.Refresh(ctx)
		}
	}
}

// Material implements trust.Vault: the last good material of uri. A URI
// never fetched is an error (the last fetch's, naming the URI); material
// the service says is gone is an error wrapping ErrGone.
func (c *Cache) Material(uri string, max int64) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[uri]
	switch {
	case !ok:
		return nil, fmt.Errorf("%s: not fetched from its key-management service", uri)
	case e.gone:
		return nil, e.err
	case e.data == nil:
		return nil, e.err
	case int64(len(e.data)) > max:
		return nil, fmt.Errorf("%s: more than %d bytes", uri, max)
	}
	return slices.Clone(e.data), nil
}

// Fingerprint hashes the URIs held and their material, so that a reload
// sees a rotated key and cached verdicts are not used under other
// material.
func (c *Cache) Fingerprint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	uris := make([]string, 0, len(c.entries))
	for u := range c.entries {
		uris = append(uris, u)
	}
	sort.Strings(uris)
	h := sha256.New()
	for _, u := range uris {
		e := c.entries[u]
		sum := sha256.Sum256(e.data)
		fmt.Fprintf(h, "%d:%s gone=%v data=%x;", len(u), u, e.gone, sum)
	}
	return hex.EncodeToString(h.Sum(nil))
}
