package trust_test

import (
	"testing"

	"github.com/vouch-project/vouch/trust"
)

// FuzzParse: the parsers of trust files never panic, whatever the bytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\ntrailing"))
	f.Add([]byte{0x30, 0x82, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = trust.ParseCertificates(data)
		_, _ = trust.ParsePEMCertificates(data)
		_, _ = trust.ParsePublicKeys(data)
	})
}
