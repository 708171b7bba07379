package kms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/vouch-project/vouch/trust/kms"
)

// service is a Fetcher over a map the test changes: what a KMS holds, or
// a failure (down) or a definitive "gone".
type service struct {
	mu    sync.Mutex
	data  map[string]string
	down  bool
	calls int
}

func (s *service) Fetch(_ context.Context, uri string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.down {
		return nil, errors.New("connection refused")
	}
	d, ok := s.data[uri]
	if !ok {
		return nil, fmt.Errorf("%w: 404", kms.ErrGone)
	}
	return []byte(d), nil
}

func (s *service) set(f func(*service)) { s.mu.Lock(); f(s); s.mu.Unlock() }

// TestCache: fetched once at Load, from memory afterwards; a failed
// first fetch trusts nothing (fail closed); a failed refresh keeps the
// last good material and logs it, without the material; "gone" drops it;
// the fingerprint follows the material; Load forgets what is no longer
// named; oversized material is refused.
func TestCache(t *testing.T) {
	ctx := context.Background()
	svc := &service{data: map[string]string{"awskms:///alias/a": "A1"}}
	var logs bytes.Buffer
	c, err := kms.NewCache(kms.CacheOptions{Fetcher: svc, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Material("awskms:///alias/a", 100); err == nil {
		t.Fatal("material before any Load")
	}
	if err := c.Load(ctx, []string{"awskms:///alias/a", "awskms:///alias/missing"}); err == nil || !strings.Contains(err.Error(), "awskms:///alias/missing") {
		t.Fatalf("Load with a missing key: err = %v, want one naming it", err)
	}
	got, err := c.Material("awskms:///alias/a", 100)
	if err != nil || string(got) != "A1" {
		t.Fatalf("Material = %q, %v", got, err)
	}
	if _, err := c.Material("awskms:///alias/missing", 100); !errors.Is(err, kms.ErrGone) {
		t.Fatalf("missing: err = %v, want ErrGone", err)
	}
	if _, err := c.Material("awskms:///alias/a", 1); err == nil {
		t.Fatal("material longer than max: no error")
	}
	calls := svc.calls
	if err := c.Load(ctx, []string{"awskms:///alias/a"}); err != nil || svc.calls != calls {
		t.Fatalf("Load of what is held: err %v, %d fetches, want none", err, svc.calls-calls)
	}
	fp1 := c.Fingerprint()

	svc.set(func(s *service) { s.down = true })
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("Refresh with the service down: no error")
	}
	if got, err := c.Material("awskms:///alias/a", 100); err != nil || string(got) != "A1" {
		t.Fatalf("after a failed refresh: %q, %v; want the last good A1", got, err)
	}
	if !strings.Contains(logs.String(), "keeping the material fetched before") || strings.Contains(logs.String(), "A1") {
		t.Fatalf("log of the failed refresh: %s", logs.String())
	}
	if c.Fingerprint() != fp1 {
		t.Fatal("a failed refresh changed the fingerprint")
	}

	svc.set(func(s *service) { s.down = false; s.data["awskms:///alias/a"] = "A2" })
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Material("awskms:///alias/a", 100); string(got) != "A2" {
		t.Fatalf("after a rotation: %q, want A2", got)
	}
	if c.Fingerprint() == fp1 {
		t.Fatal("a rotation left the fingerprint as it was")
	}

	svc.set(func(s *service) { delete(s.data, "awskms:///alias/a") })
	_ = c.Refresh(ctx)
	if _, err := c.Material("awskms:///alias/a", 100); !errors.Is(err, kms.ErrGone) {
		t.Fatalf("after deletion: err = %v, want ErrGone (no last good value)", err)
	}

	if err := c.Load(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Material("awskms:///alias/a", 100); err == nil || errors.Is(err, kms.ErrGone) {
		t.Fatalf("after a Load without it: err = %v, want not fetched", err)
	}
}

// TestCacheBounds: material over MaxMaterialBytes is refused at Load.
func TestCacheBounds(t *testing.T) {
	big := kms.FetcherFunc(func(context.Context, string) ([]byte, error) {
		return make([]byte, kms.MaxMaterialBytes+1), nil
	})
	c, err := kms.NewCache(kms.CacheOptions{Fetcher: big})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(context.Background(), []string{"hashivault://k"}); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("oversized material: err = %v", err)
	}
}
