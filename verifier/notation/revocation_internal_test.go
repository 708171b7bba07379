package notation

import (
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	corecrl "github.com/notaryproject/notation-core-go/revocation/crl"
)

// TestMemoryCRLCacheBounds fills the in-memory CRL cache past its bounds
// on the number of CRLs and on their bytes; TestCRLCache shows it caching
// real CRLs downloaded from a server.
func TestMemoryCRLCacheBounds(t *testing.T) {
	ctx := t.Context()
	bundle := func(size int, nextUpdate time.Time) *corecrl.Bundle {
		return &corecrl.Bundle{BaseCRL: &x509.RevocationList{Raw: make([]byte, size), NextUpdate: nextUpdate}}
	}
	later := time.Now().Add(time.Hour)
	check := func(c *memoryCRLCache) {
		t.Helper()
		var sum int64
		for _, b := range c.bundles {
			sum += bundleBytes(b)
		}
		if len(c.bundles) > maxMemoryCRLs || sum > maxMemoryCRLBytes || sum != c.bytes {
			t.Fatalf("%d CRLs, %d bytes (counted %d): over the bounds %d and %d", len(c.bundles), sum, c.bytes, maxMemoryCRLs, maxMemoryCRLBytes)
		}
	}

	c := &memoryCRLCache{bundles: map[string]*corecrl.Bundle{}}
	for i := range 2 * maxMemoryCRLs {
		if err := c.Set(ctx, fmt.Sprintf("http://crl.test/%d", i), bundle(1000, later)); err != nil {
			t.Fatal(err)
		}
		check(c)
	}
	if len(c.bundles) != maxMemoryCRLs {
		t.Fatalf("%d CRLs cached, want %d", len(c.bundles), maxMemoryCRLs)
	}
	if _, err := c.Get(ctx, fmt.Sprintf("http://crl.test/%d", 2*maxMemoryCRLs-1)); err != nil {
		t.Fatalf("the last CRL set is not cached: %v", err)
	}

	c = &memoryCRLCache{bundles: map[string]*corecrl.Bundle{}}
	big := maxMemoryCRLBytes / 3
	for i := range 5 {
		if err := c.Set(ctx, fmt.Sprintf("http://crl.test/big%d", i), bundle(big, later)); err != nil {
			t.Fatal(err)
		}
		check(c)
	}
	if err := c.Set(ctx, "http://crl.test/huge", bundle(maxMemoryCRLBytes+1, later)); err != nil {
		t.Fatal(err)
	}
	check(c)
	if _, err := c.Get(ctx, "http://crl.test/huge"); !errors.Is(err, corecrl.ErrCacheMiss) {
		t.Fatalf("a CRL over the byte bound was cached: %v", err)
	}
	// Setting a URL again replaces its CRL and its bytes.
	if err := c.Set(ctx, "http://crl.test/big4", bundle(10, later)); err != nil {
		t.Fatal(err)
	}
	check(c)

	if err := c.Set(ctx, "http://crl.test/stale", bundle(10, time.Now().Add(-time.Second))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "http://crl.test/stale"); !errors.Is(err, corecrl.ErrCacheMiss) {
		t.Fatalf("a CRL past its NextUpdate was served: %v", err)
	}
	check(c)
}
