//go:build kms

package main

import (
	"log/slog"
	"time"

	"github.com/vouch-project/vouch/trust/kms"
)

// keyVaultOptions are the providers' options: the zero value (credentials
// and endpoints from the environment, TLS verified against the system's
// roots). Tests set an HTTPClient that trusts their Key Vault stand-in.
var keyVaultOptions kms.Options

// newKeyVault returns trust/kms's Cache over every provider it knows,
// refreshing every refresh (docs/key-management.md).
func newKeyVault(refresh time.Duration, logger *slog.Logger) (keyVault, error) {
	return kms.NewCache(kms.CacheOptions{Fetcher: kms.New(keyVaultOptions), Refresh: refresh, Logger: logger})
}
