package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"

	"oras.land/oras-go/v2/registry/remote/auth"
)

// CredentialsID identifies a set of credentials per host without
// disclosing them: the hex SHA-256 of its hosts and credentials in a fixed
// order; "" for none. Equal sets have equal IDs.
func CredentialsID(creds map[string]auth.Credential) string {
	if len(creds) == 0 {
		return ""
	}
	hosts := make([]string, 0, len(creds))
	for h := range creds {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	h := sha256.New()
	for _, host := range hosts {
		c := creds[host]
		for _, s := range []string{host, c.Username, c.Password, c.RefreshToken, c.AccessToken} {
			// Length-prefixed, so that no two sets hash the same input.
			var n [8]byte
			for i, l := 0, uint64(len(s)); i < 8; i++ {
				n[i] = byte(l >> (8 * i))
			}
			h.Write(n[:])
			h.Write([]byte(s))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
