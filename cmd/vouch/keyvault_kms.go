//go:build kms

package main

import (
	"log/slog"
	"time"

	"github.com/vouch-project/vouch/trust/kms"
)

// newKeyVault returns trust/kms's Cache over every provider it knows,
// refreshing every refresh (docs/key-management.md).
func newKeyVault(refresh time.Duration, logger *slog.Logger) (keyVault, error) {
	return kms.NewCache(kms.CacheOptions{Fetcher: kms.New(kms.Options{}), Refresh: refresh, Logger: logger})
}
