package trust

import (
	"errors"
	"fmt"
	"net/url"
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

// ErrGone marks key-vault material that the service answered is gone: the
// key or certificate does not exist (any more), or is disabled. It is no
// longer trusted: a Vault reports it with an error wrapping ErrGone, and
// vouch builds its verifiers without it.
var ErrGone = errors.New("not found or disabled in the key-management service")

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

// AzureKeyVault names certificates held in an Azure Key Vault, as the
// parameters of Ratify's azurekeyvault key management provider do. vouch
// reads each certificate's "cer" (the certificate itself, not its chain):
// store the CA certificate for a ca trust store, the signing certificate
// for a signingAuthority one.
//
// +kubebuilder:object:generate=true
type AzureKeyVault struct {
	// VaultURI is the vault's URI, such as https://myvault.vault.azure.net/.
	// Required.
	VaultURI string `json:"vaultURI"`
	// Certificates are the certificates to read. Required.
	// +kubebuilder:validation:MinItems=1
	Certificates []KeyVaultCertificate `json:"certificates"`
}

// KeyVaultCertificate is one certificate of an Azure Key Vault.
//
// +kubebuilder:object:generate=true
type KeyVaultCertificate struct {
	// Name is the certificate's name in the vault. Required.
	Name string `json:"name"`
	// Version is the certificate's version. Optional; default the latest,
	// read again at every refresh (a rotated certificate is picked up).
	Version string `json:"version,omitempty"`
}

// URIs returns the identifiers of a's certificates, as a Vault takes
// them: https://VAULT/certificates/NAME[/VERSION].
func (a AzureKeyVault) URIs() []string {
	base := strings.TrimRight(a.VaultURI, "/")
	out := make([]string, len(a.Certificates))
	for i, c := range a.Certificates {
		out[i] = base + "/certificates/" + url.PathEscape(c.Name)
		if c.Version != "" {
			out[i] += "/" + url.PathEscape(c.Version)
		}
	}
	return out
}

// Validate checks a's shape; errors name the field below path.
func (a AzureKeyVault) Validate(path string) error {
	u, err := url.Parse(a.VaultURI)
	switch {
	case a.VaultURI == "":
		return fmt.Errorf("%s.vaultURI: required (https://NAME.vault.azure.net/)", path)
	case err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		return fmt.Errorf("%s.vaultURI: %q is not a vault URI (https://NAME.vault.azure.net/)", path, a.VaultURI)
	case len(a.Certificates) == 0:
		return fmt.Errorf("%s.certificates: name at least one certificate", path)
	}
	for i, c := range a.Certificates {
		if c.Name == "" {
			return fmt.Errorf("%s.certificates[%d].name: required", path, i)
		}
		if strings.Contains(c.Name, "/") || strings.Contains(c.Version, "/") {
			return fmt.Errorf("%s.certificates[%d]: a name or version has no \"/\"", path, i)
		}
	}
	return nil
}

// ValidateKMSKey checks that s is a cosign KMS key URI; errors name path.
func ValidateKMSKey(path, s string) error {
	if !IsKMSKey(s) {
		return fmt.Errorf("%s: %q is not a KMS key URI (%s)", path, s, strings.Join(kmsSchemes, ", "))
	}
	return nil
}
