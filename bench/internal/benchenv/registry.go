package benchenv

import (
	"net/url"
	"time"

	"github.com/vouch-project/vouch/bench/delayproxy"
	"github.com/vouch-project/vouch/internal/testbed"
)

// Registry is a distribution v3 registry process on 127.0.0.1 (no
// referrers API: clients use the tag-schema fallback).
type Registry struct {
	*testbed.Registry
}

// StartRegistry starts the registry with its storage in a new folder under
// e.Work.
func (e *Env) StartRegistry(name string) (*Registry, error) {
	r, err := testbed.StartDistribution(testbed.DistributionOptions{Bin: e.Bin["registry"], Dir: e.Dir(name)})
	if err != nil {
		return nil, err
	}
	return &Registry{r}, nil
}

// Proxy starts a delay proxy in front of r.
func (r *Registry) Proxy(delay time.Duration, tooManyRate float64) (*delayproxy.Server, error) {
	p, err := delayproxy.New(delayproxy.Options{
		Target:      &url.URL{Scheme: "http", Host: r.Host},
		Delay:       delay,
		TooManyRate: tooManyRate,
	})
	if err != nil {
		return nil, err
	}
	return delayproxy.Listen(p)
}
