package kms

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/trust"
)

// FuzzParseCertificateBundle: Key Vault's answer is outside input; any
// bytes give PEM certificates that parse back, or an error, never a panic.
func FuzzParseCertificateBundle(f *testing.F) {
	f.Add([]byte(`{"id":"https://v/certificates/c/1","cer":"` + base64.StdEncoding.EncodeToString([]byte("not DER")) + `","attributes":{"enabled":true}}`))
	f.Add([]byte(`{"cer":"","attributes":{"enabled":false}}`))
	f.Add([]byte(`{"cer":"MIIB-_"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := parseCertificateBundle(body)
		if err != nil {
			if out != nil {
				t.Fatal("output with an error")
			}
			return
		}
		if _, err := trust.ParsePEMCertificates(out); err != nil || !strings.HasPrefix(string(out), "-----BEGIN CERTIFICATE-----") {
			t.Fatalf("output does not parse back: %v", err)
		}
	})
}
