package trust

import (
	"errors"
	"strings"
)

// Vault hands out trust material held in a key-management service, named
// by a URI: the PEM public key of a cosign KMS key ("awskms:///alias/x",
// "gcpkms://projects/…", "azurekms://…", "hashivault://…"), or the PEM
// certificates of an Azure Key Vault certificate
// ("https://NAME.vault.azure.net/certificates/CERT[/VERSION]"). Like a
// Resolver it works on what it holds in memory: the package trust/kms
// fetches the material when vouch starts and refreshes it, and a URI it
// has never fetched is an error. The value is at most max bytes.
type Vault interface {
	Material(uri string, max int64) ([]byte, error)
}

// VaultFunc adapts a function to Vault.
type VaultFunc func(uri string, max int64) ([]byte, error)

// Material calls f.
func (f VaultFunc) Material(uri string, max int64) ([]byte, error) { return f(uri, max) }

// ErrNoVault is the error of naming key-vault material where no Vault
// reads it: a vouch built without key-management support (-tags kms), or
// a source that does not fetch it (custom resources, for now).
var ErrNoVault = errors.New("this vouch reads no key-management service: build it with -tags kms (the container image is), or download the key or certificate into a file")

// KMS URI schemes of cosign public keys, as cosign's --key takes them.
var kmsSchemes = []string{"awskms://", "gcpkms://", "azurekms://", "hashivault://"}

// KMSSchemes lists the URI schemes of cosign KMS keys ("awskms://", …).
func KMSSchemes() []string { return append([]string(nil), kmsSchemes...) }

// IsKMSKey reports whether s is a cosign KMS key URI: it starts with one
// of KMSSchemes.
func IsKMSKey(s string) bool {
	for _, p := range kmsSchemes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
