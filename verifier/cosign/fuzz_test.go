package cosign

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"
)

// The fuzz targets cover every parser of registry content: simple-signing
// payloads, DSSE envelopes and in-toto statements, cosign's Rekor bundle
// annotation, Sigstore bundles, and the dotted-path lookup into predicates.
// Seeds are what the real cosign 2.6.5 pushed (testdata/).

func seed(f *testing.F, name string) []byte {
	f.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

func FuzzParseSimpleSigning(f *testing.F) {
	f.Add(seed(f, "simplesigning.json"))
	f.Add([]byte(`{"critical":{"image":{"docker-manifest-digest":"sha256:00"}},"optional":{"a":[1,{"b":null}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseSimpleSigning(data)
		if err == nil && p.Critical.Image.DockerManifestDigest == "" {
			t.Fatal("accepted a payload without a digest")
		}
		if err == nil {
			for _, v := range p.Optional {
				_ = annotationText(v)
			}
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add(seed(f, "spdx.att.dsse.json"), "SPDXID")
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":""}]}`), "a.0.b")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		env, payload, _, err := parseEnvelope(data)
		if err != nil {
			return
		}
		s, err := parseStatement(env.PayloadType, payload)
		if err != nil {
			return
		}
		_ = s.subjectDigests()
		_ = s.names("sha256:00")
		if validatePath(path) == nil {
			_, _ = lookup(s.Predicate, path)
		}
	})
}

func FuzzParseRekorBundle(f *testing.F) {
	body := `{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":"` +
		"0000000000000000000000000000000000000000000000000000000000000000" + `"}},"signature":{"content":"c2ln","publicKey":{"content":"a2V5"}}}}`
	annotation, err := json.Marshal(map[string]any{
		"SignedEntryTimestamp": []byte("set"),
		"Payload":              map[string]any{"body": base64.StdEncoding.EncodeToString([]byte(body)), "integratedTime": 1, "logIndex": 2, "logID": "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(annotation))
	f.Add(`{"SignedRFC3161Timestamp":"dHM="}`)
	f.Fuzz(func(t *testing.T, data string) {
		_, _ = parseRekorBundle(data)
		_, _ = parseRFC3161(data)
		_, _ = parseCertificates(data, MaxChainCertificates)
	})
}

func FuzzParseBundle(f *testing.F) {
	f.Add(seed(f, "key-signed.bundle.json"))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := parseBundle(data)
		if err != nil {
			return
		}
		if _, err := b.TlogEntries(); err != nil {
			return
		}
		if _, err := b.VerificationContent(); err != nil {
			return
		}
		_, _ = b.SignatureContent()
	})
}
