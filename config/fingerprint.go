package config

import (
	"path/filepath"

	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/cosign"
	"github.com/vouch-project/vouch/verifier/notation"
	"github.com/vouch-project/vouch/verifier/plugin"
	"github.com/vouch-project/vouch/verifier/schema"
)

// TrustFiles lists the files and folders whose content the file's
// verifiers read, resolved: trust store certificates, Notation trust
// policies and the trust store folder of a Notation configDir, cosign keys,
// certificate roots and trusted roots, schema files, plugin executables and
// Notation plugin folders.
// Caches (notation's crlCacheDir) and the Docker config (credentials, not
// trust) are not listed.
func (f *File) TrustFiles() []string {
	var files []string
	for _, s := range f.TrustStores {
		files = append(files, s.Files...)
	}
	for i := range f.Verifiers {
		v := &f.Verifiers[i]
		if k, ok := kindOf(v.Type); ok && k.set(v) {
			files = append(files, k.files(v)...)
		}
	}
	return files
}

// Fingerprint hashes the config document and the content of every file
// TrustFiles lists (a folder: the files below it), bounded by
// trust.MaxFingerprintFiles and trust.MaxFingerprintBytes: it changes when
// the config or the trust material it names changes, and only then.
func (f *File) Fingerprint() (string, error) {
	fp := trust.NewFingerprinter()
	fp.Add("config", string(f.data))
	for _, p := range f.TrustFiles() {
		if err := fp.Path(p); err != nil {
			return "", err
		}
	}
	// Key-vault material as the Vault holds it now: a rotated or removed
	// key changes the sum, so no verdict of the old material is reused.
	for _, uri := range f.VaultURIs() {
		if f.Vault == nil {
			fp.Add("vault "+uri, "not fetched")
			continue
		}
		data, err := f.Vault.Material(uri, MaxFileBytes)
		if err != nil {
			fp.Add("vault "+uri, "error: "+err.Error())
			continue
		}
		fp.Add("vault "+uri, string(data))
	}
	return fp.Sum(), nil
}

func notationFiles(c *notation.Config) []string {
	files := []string{c.TrustPolicy}
	if c.ConfigDir != "" {
		files = append(files, filepath.Join(c.ConfigDir, "truststore"))
	}
	if c.Plugins != nil && c.Plugins.Dir != "" {
		files = append(files, c.Plugins.Dir)
	}
	return files
}

func cosignFiles(c *cosign.Config) []string {
	files := append(append([]string(nil), c.Keys.Files...), c.CertificateRoots.Files...)
	if c.TrustedRoot != "" {
		files = append(files, c.TrustedRoot)
	}
	return files
}

func schemaFiles(c *schema.Config) []string {
	var files []string
	for _, p := range []string{c.Schema, c.SchemaFile} {
		if p != "" {
			files = append(files, p)
		}
	}
	for _, r := range c.Resources {
		files = append(files, r.File)
	}
	return files
}

func pluginFiles(c *plugin.Config) []string { return []string{c.Path} }
