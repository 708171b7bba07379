package notation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/notaryproject/notation-core-go/revocation"
	corecrl "github.com/notaryproject/notation-core-go/revocation/crl"
	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/revocation/result"
	"github.com/notaryproject/notation-go/verifier/crl"
)

// DefaultRevocationTimeout bounds each OCSP request and CRL download when
// Revocation.Timeout is zero: notation's own OCSP timeout, and short enough
// for an admission webhook's budget.
const DefaultRevocationTimeout = 2 * time.Second

// maxMemoryCRLs and maxMemoryCRLBytes bound the in-memory CRL cache.
const (
	maxMemoryCRLs     = 256
	maxMemoryCRLBytes = 64 << 20
)

// Revocation configures revocation checking of signing and timestamping
// certificates by OCSP, falling back to CRL, as notation-go does it. Whether
// a failed or impossible check fails the signature is the trust policy's
// choice: level strict enforces revocation, permissive and audit log it,
// and an override can skip it.
type Revocation struct {
	// Timeout bounds each OCSP request and CRL download; the caller's
	// context deadline applies as well. Optional; default 2s.
	Timeout time.Duration
	// CRLCacheDir keeps downloaded CRLs on disk until their NextUpdate, in
	// notation's file cache format (notation uses
	// $XDG_CACHE_HOME/notation/crl), shared across processes. Optional;
	// default: CRLs are cached in memory by the Verifier.
	CRLCacheDir string
	// DisableUnsafe turns revocation checking off for every statement, as if
	// each had the override "revocation": "skip": a revoked certificate is
	// then trusted. Optional; default false.
	DisableUnsafe bool
}

// validatorPair holds the revocation validators notation-go takes.
type validatorPair struct {
	codeSigning, timestamping revocation.Validator
}

// validators builds the revocation validators; only chains that include a
// certificate of trusted are checked (see recordingValidator).
func (r Revocation) validators(trusted []*x509.Certificate) (validatorPair, error) {
	timeout := r.Timeout
	if timeout < 0 {
		return validatorPair{}, fmt.Errorf("Revocation.Timeout is negative: %s", timeout)
	}
	if timeout == 0 {
		timeout = DefaultRevocationTimeout
	}
	client := &http.Client{Timeout: timeout}
	fetcher, err := corecrl.NewHTTPFetcher(client)
	if err != nil {
		return validatorPair{}, err
	}
	if r.CRLCacheDir != "" {
		cache, err := crl.NewFileCache(r.CRLCacheDir)
		if err != nil {
			return validatorPair{}, fmt.Errorf("Revocation.CRLCacheDir: %w", err)
		}
		fetcher.Cache = cache
		// A broken cache file costs a download, not a verdict.
		fetcher.DiscardCacheError = true
	} else {
		fetcher.Cache = &memoryCRLCache{bundles: map[string]*corecrl.Bundle{}}
	}
	var out validatorPair
	for _, p := range []struct {
		purpose purpose.Purpose
		dst     *revocation.Validator
		kind    string
	}{{purpose.CodeSigning, &out.codeSigning, kindCodeSigning}, {purpose.Timestamping, &out.timestamping, kindTimestamping}} {
		v, err := revocation.NewWithOptions(revocation.Options{OCSPHTTPClient: client, CRLFetcher: fetcher, CertChainPurpose: p.purpose})
		if err != nil {
			return validatorPair{}, err
		}
		*p.dst = recordingValidator{inner: v, kind: p.kind, trusted: trusted}
	}
	return out, nil
}

const (
	kindCodeSigning  = "code signing"
	kindTimestamping = "timestamping"
)

// recordingValidator passes revocation results on to the recorder in the
// context, so that a revoked certificate can be told from an unknown status
// without reading notation-go's error messages.
//
// It checks only chains that include a trusted certificate. notation-go
// checks revocation after authenticity, and goes on when authenticity is
// only logged (level audit, override authenticity: log): without this,
// whoever can attach a signature could make vouch send HTTP requests to
// the OCSP and CRL URLs of certificates they made, anywhere vouch can
// reach. The status of an untrusted chain that names such URLs is unknown,
// "not checked": where revocation is enforced, the signature cannot pass
// (notation-go would pass it if the signer's own servers said "good").
type recordingValidator struct {
	inner   revocation.Validator
	kind    string
	trusted []*x509.Certificate
}

// errUntrustedChain is the revocation error of a chain that includes no
// trusted certificate.
var errUntrustedChain = errors.New("not checked: no trust store holds a certificate of the chain, so vouch does not ask the OCSP responders or CRL distribution points it names")

// ValidateContext implements revocation.Validator.
func (v recordingValidator) ValidateContext(ctx context.Context, opts revocation.ValidateContextOptions) ([]*result.CertRevocationResult, error) {
	var res []*result.CertRevocationResult
	var err error
	if v.trustedChain(opts.CertChain) || !namesServers(opts.CertChain) {
		res, err = v.inner.ValidateContext(ctx, opts)
	} else {
		err = errUntrustedChain
	}
	if rec, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		rec.record(v.kind, res, err)
	}
	return res, err
}

// trustedChain tells whether chain includes a trusted certificate, as
// notation's authenticity check asks (signature.VerifyAuthenticity).
func (v recordingValidator) trustedChain(chain []*x509.Certificate) bool {
	for _, c := range chain {
		for _, t := range v.trusted {
			if t.Equal(c) {
				return true
			}
		}
	}
	return false
}

// namesServers tells whether a certificate of chain names OCSP responders
// or CRL distribution points.
func namesServers(chain []*x509.Certificate) bool {
	for _, c := range chain {
		if len(c.OCSPServer) > 0 || len(c.CRLDistributionPoints) > 0 {
			return true
		}
	}
	return false
}

type recorderKey struct{}

// recorder keeps the revocation results and what the verification plugin
// did in one Verify call.
type recorder struct {
	mu                        sync.Mutex
	codeSigning, timestamping revocationRecord
	plugin                    pluginRecord
}

func withRecorder(ctx context.Context, rec *recorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, rec)
}

func (r *recorder) record(kind string, res []*result.CertRevocationResult, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dst := &r.codeSigning
	if kind == kindTimestamping {
		dst = &r.timestamping
	}
	dst.results, dst.err = append(dst.results, res...), errors.Join(dst.err, err)
}

// revocationRecord is what one validator reported.
type revocationRecord struct {
	results []*result.CertRevocationResult
	err     error
}

func (r revocationRecord) revoked() bool {
	for _, c := range r.results {
		if c != nil && c.Result == result.ResultRevoked {
			return true
		}
	}
	return false
}

func (r revocationRecord) ok() bool {
	for _, c := range r.results {
		if c == nil || (c.Result != result.ResultOK && c.Result != result.ResultNonRevokable) {
			return false
		}
	}
	return true
}

// problems lists what went wrong asking revocation servers.
func (r revocationRecord) problems() string {
	var out []string
	if r.err != nil {
		out = append(out, r.err.Error())
	}
	for _, c := range r.results {
		if c == nil {
			continue
		}
		for _, s := range c.ServerResults {
			if s != nil && s.Error != nil {
				out = append(out, fmt.Sprintf("%s %s: %v", s.RevocationMethod, s.Server, s.Error))
			}
		}
	}
	if len(out) == 0 {
		return "no revocation server answered"
	}
	return strings.Join(out, "; ")
}

// memoryCRLCache keeps CRLs in memory until their NextUpdate: at most
// maxMemoryCRLs of them, and at most maxMemoryCRLBytes counted by their DER
// size (notation-core-go downloads CRLs of up to 32 MiB each). A CRL that
// does not fit is used but not kept.
type memoryCRLCache struct {
	mu      sync.Mutex
	bundles map[string]*corecrl.Bundle
	bytes   int64
}

// bundleBytes is the DER size of a bundle's CRLs.
func bundleBytes(b *corecrl.Bundle) int64 {
	n := int64(len(b.BaseCRL.Raw))
	if b.DeltaCRL != nil {
		n += int64(len(b.DeltaCRL.Raw))
	}
	return n
}

// stale tells whether a bundle's base or delta CRL is past its NextUpdate.
func stale(b *corecrl.Bundle, now time.Time) bool {
	return now.After(b.BaseCRL.NextUpdate) || (b.DeltaCRL != nil && now.After(b.DeltaCRL.NextUpdate))
}

// drop removes url's bundle; c.mu is held.
func (c *memoryCRLCache) drop(url string) {
	if b, ok := c.bundles[url]; ok {
		c.bytes -= bundleBytes(b)
		delete(c.bundles, url)
	}
}

// Get implements corecrl.Cache.
func (c *memoryCRLCache) Get(_ context.Context, url string) (*corecrl.Bundle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.bundles[url]
	if !ok {
		return nil, corecrl.ErrCacheMiss
	}
	if stale(b, time.Now()) {
		c.drop(url)
		return nil, corecrl.ErrCacheMiss
	}
	return b, nil
}

// Set implements corecrl.Cache.
func (c *memoryCRLCache) Set(_ context.Context, url string, b *corecrl.Bundle) error {
	if b == nil || b.BaseCRL == nil {
		return errors.New("CRL bundle without a base CRL")
	}
	size := bundleBytes(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop(url)
	if size > maxMemoryCRLBytes {
		return nil
	}
	if len(c.bundles) >= maxMemoryCRLs || c.bytes+size > maxMemoryCRLBytes {
		now := time.Now()
		for k, old := range c.bundles {
			if stale(old, now) {
				c.drop(k)
			}
		}
		for k := range c.bundles {
			if len(c.bundles) < maxMemoryCRLs && c.bytes+size <= maxMemoryCRLBytes {
				break
			}
			c.drop(k)
		}
	}
	c.bundles[url] = b
	c.bytes += size
	return nil
}
