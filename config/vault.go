package config

// VaultURIs lists the key-vault material that s names, in the order of
// the document: the cosign verifiers' keys.kms URIs and the trust stores'
// Azure Key Vault certificates (trust.AzureKeyVault.URIs). What reads a
// config fetches them (trust/kms) before Build and hands Build a Vault
// holding them (File.Vault).
func (s *Spec) VaultURIs() []string {
	var out []string
	for _, st := range s.TrustStores {
		if st.AzureKeyVault != nil {
			out = append(out, st.AzureKeyVault.URIs()...)
		}
	}
	for _, v := range s.Verifiers {
		if v.Cosign != nil {
			out = append(out, v.Cosign.Keys.KMS...)
		}
	}
	return out
}
