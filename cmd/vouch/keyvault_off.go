//go:build !kms

package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vouch-project/vouch/trust"
)

// newKeyVault returns a keyVault that fetches nothing: key-management
// support is linked only with -tags kms (keyvault_kms.go).
func newKeyVault(time.Duration, *slog.Logger) (keyVault, error) { return noKeyVault{}, nil }

// noKeyVault refuses key-vault material.
type noKeyVault struct{}

func (noKeyVault) Load(_ context.Context, uris []string) error {
	if len(uris) > 0 {
		return fmt.Errorf("%s: %w", uris[0], trust.ErrNoVault)
	}
	return nil
}

func (noKeyVault) Material(uri string, _ int64) ([]byte, error) {
	return nil, fmt.Errorf("%s: %w", uri, trust.ErrNoVault)
}

func (noKeyVault) Start(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

func (noKeyVault) Fingerprint() string { return "" }
