package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultInterval is how often a Poll looks at its files, by default.
const DefaultInterval = 5 * time.Second

// Poll is the Source of configurations read from files: every Interval it
// fingerprints the files' content, and builds a generation when the
// fingerprint is neither the one serving nor one that failed already. It
// compares content, not modification times or file events: Kubernetes
// updates a mounted ConfigMap or Secret by swapping a symbolic link, which
// a content hash sees whatever the file system reports. A build counts only
// if the fingerprint is the same after it as before: files that change
// while they are read are built again on the next look, never half-applied.
type Poll struct {
	// Interval is the time between two looks. Optional; default
	// DefaultInterval.
	Interval time.Duration
	// Fingerprint hashes the content of every file a build reads (the
	// config file, the trust files it and the flags name). It must hash a
	// file that does not parse too (by its bytes), so that a broken change
	// is built once, not on every look. Required.
	Fingerprint func() (string, error)
	// Build builds a generation from the files as they are. Required.
	Build func(ctx context.Context) (*Generation, error)
	// Logger logs files that changed while they were read (at debug
	// level). Optional; default slog.Default().
	Logger *slog.Logger

	// last is the fingerprint of the generation built last; failed the
	// fingerprint of the last change rejected.
	last, failed string
}

// firstAttempts bounds the builds First tries while the files keep
// changing under it.
const firstAttempts = 5

// ErrChanging is returned by First when the files changed during every
// build it tried.
var ErrChanging = errors.New("reload: the configuration files changed while they were read")

// First builds the first generation, for NewHolder, from files that stay
// the same while they are read (see ErrChanging).
func (p *Poll) First(ctx context.Context) (*Generation, error) {
	if p.Fingerprint == nil || p.Build == nil {
		return nil, errors.New("reload: Poll.Fingerprint and Poll.Build are required")
	}
	for range firstAttempts {
		g, fp, err := p.build(ctx)
		if err != nil {
			return nil, err
		}
		if g != nil {
			p.last = fp
			return g, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil, ErrChanging
}

// build builds a generation, with the fingerprint of the files it was
// built from. It returns no generation and no error when the files
// changed during the build: a build error then may come from the change
// (a file removed under it) rather than from the files as they end up.
func (p *Poll) build(ctx context.Context) (*Generation, string, error) {
	before, err := p.Fingerprint()
	if err != nil {
		return nil, "", err
	}
	g, buildErr := p.Build(ctx)
	after, err := p.Fingerprint()
	switch {
	case err != nil:
		return nil, before, err
	case after != before:
		return nil, before, nil
	case buildErr != nil:
		return nil, before, buildErr
	}
	return g, before, nil
}

// Start looks at the files every Interval and hands h each change, until
// ctx ends; it returns nil then. First must have run.
func (p *Poll) Start(ctx context.Context, h *Holder) error {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.Check(ctx, h)
		}
	}
}

// Check looks at the files once and hands h what changed: a generation to
// swap in, or why the change was rejected. A fingerprint that served or
// failed last is not built again: a broken file costs one build per
// change, not one per look.
func (p *Poll) Check(ctx context.Context, h *Holder) {
	fp, err := p.Fingerprint()
	if err != nil {
		// The files cannot be read (a bound exceeded, a permission): the
		// Holder reports each distinct error once.
		h.Reject("", fmt.Errorf("reading the configuration: %w", err))
		return
	}
	if fp == p.last || fp == p.failed {
		return
	}
	g, built, err := p.build(ctx)
	switch {
	case err != nil:
		p.failed = built
		h.Reject(built, err)
	case g == nil:
		p.Logger.Debug("configuration files changed while they were read; building again on the next look")
	default:
		p.last, p.failed = built, ""
		h.Swap(g)
	}
}
