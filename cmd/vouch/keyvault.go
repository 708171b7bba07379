package main

import (
	"context"
	"time"

	"github.com/vouch-project/vouch/trust"
)

// keyVault holds the trust material a config names in key-management
// services (cosign KMS keys, Azure Key Vault certificates): trust/kms's
// Cache in a vouch built with -tags kms (keyvault_kms.go), else one that
// refuses such material (keyvault_off.go), so that the cloud SDKs cost
// the default build's start-up nothing.
type keyVault interface {
	trust.Vault
	// Load fetches the URIs not held yet and forgets the others; an error
	// names what could not be fetched (fail closed).
	Load(ctx context.Context, uris []string) error
	// Start refreshes the material until ctx ends.
	Start(ctx context.Context) error
	// Fingerprint hashes the material held.
	Fingerprint() string
}

// defaultKeyRefresh is --key-refresh's default.
const defaultKeyRefresh = time.Hour
