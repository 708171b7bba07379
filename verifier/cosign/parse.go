package cosign

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/tlog"
)

// MaxChainCertificates bounds the certificates of one chain annotation.
const MaxChainCertificates = 10

// simpleSigning is cosign's signature payload, the "simple signing" format
// of containers/image: https://github.com/containers/image/blob/main/docs/containers-signature.5.md
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

func parseSimpleSigning(data []byte) (*simpleSigning, error) {
	var p simpleSigning
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("simple-signing payload: %w", err)
	}
	if p.Critical.Image.DockerManifestDigest == "" {
		return nil, errors.New("simple-signing payload names no critical.image.docker-manifest-digest")
	}
	return &p, nil
}

// envelope is a DSSE envelope in its JSON form:
// https://github.com/secure-systems-lab/dsse/blob/v1.0.0/envelope.md
type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// parseEnvelope decodes a DSSE envelope and returns it with its payload
// and its one signature. Sigstore signs with exactly one.
func parseEnvelope(data []byte) (*envelope, []byte, []byte, error) {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, nil, nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	payload, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("DSSE envelope payload: %w", err)
	}
	if len(e.Signatures) != 1 {
		return nil, nil, nil, fmt.Errorf("DSSE envelope has %d signatures; Sigstore signs with exactly one", len(e.Signatures))
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signatures[0].Sig)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("DSSE envelope signature: %w", err)
	}
	return &e, payload, sig, nil
}

// statement is an in-toto statement, v0.1 or v1:
// https://github.com/in-toto/attestation/blob/v1.0/spec/v1/statement.md
type statement struct {
	Type          string `json:"_type"` //nolint:tagliatelle // in-toto's field name
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate json.RawMessage `json:"predicate"`
}

// DSSE payload type of in-toto statements.
const payloadTypeInToto = "application/vnd.in-toto+json"

func parseStatement(payloadType string, data []byte) (*statement, error) {
	if payloadType != payloadTypeInToto {
		return nil, fmt.Errorf("DSSE payload type is %q, not an in-toto statement (%s)", payloadType, payloadTypeInToto)
	}
	var s statement
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	if s.PredicateType == "" {
		return nil, errors.New("in-toto statement has no predicateType")
	}
	return &s, nil
}

// subjectDigests lists the statement's subject digests as "alg:hex".
func (s *statement) subjectDigests() []string {
	var out []string
	for _, sub := range s.Subject {
		for _, alg := range slices.Sorted(maps.Keys(sub.Digest)) {
			out = append(out, alg+":"+sub.Digest[alg])
		}
	}
	return out
}

// names reports whether one of the statement's subjects has digest d
// ("alg:hex"). Hex digits compare without regard to case.
func (s *statement) names(d string) bool {
	alg, hexPart, ok := strings.Cut(d, ":")
	if !ok {
		return false
	}
	for _, sub := range s.Subject {
		if v, ok := sub.Digest[alg]; ok && strings.EqualFold(v, hexPart) {
			return true
		}
	}
	return false
}

// rekorBundle is the annotation dev.sigstore.cosign/bundle: Rekor's signed
// entry timestamp (SET) over the log entry it was given.
type rekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"` //nolint:tagliatelle // cosign's field name
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"` //nolint:tagliatelle // cosign's field name
	} `json:"Payload"` //nolint:tagliatelle // cosign's field name
}

// parseRekorBundle turns cosign's bundle annotation into a transparency-log
// entry with its inclusion promise, in the form sigstore-go verifies.
func parseRekorBundle(data string) (*tlog.Entry, error) {
	var b rekorBundle
	if err := json.Unmarshal([]byte(data), &b); err != nil {
		return nil, fmt.Errorf("rekor bundle: %w", err)
	}
	body, err := base64.StdEncoding.DecodeString(b.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("rekor bundle body: %w", err)
	}
	var kind struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kind); err != nil {
		return nil, fmt.Errorf("rekor bundle body: %w", err)
	}
	logID, err := hex.DecodeString(b.Payload.LogID)
	if err != nil {
		return nil, fmt.Errorf("rekor bundle logID: %w", err)
	}
	if len(b.SignedEntryTimestamp) == 0 {
		return nil, errors.New("rekor bundle has no SignedEntryTimestamp")
	}
	entry, err := tlog.ParseTransparencyLogEntry(&protorekor.TransparencyLogEntry{
		LogIndex:          b.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion},
		IntegratedTime:    b.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: b.SignedEntryTimestamp},
		CanonicalizedBody: body,
	})
	if err != nil {
		return nil, fmt.Errorf("rekor bundle entry: %w", err)
	}
	return entry, nil
}

// parseRFC3161 reads the annotation dev.sigstore.cosign/rfc3161timestamp.
func parseRFC3161(data string) ([]byte, error) {
	var ts struct {
		SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"` //nolint:tagliatelle // cosign's field name
	}
	if err := json.Unmarshal([]byte(data), &ts); err != nil {
		return nil, fmt.Errorf("RFC 3161 timestamp: %w", err)
	}
	if len(ts.SignedRFC3161Timestamp) == 0 {
		return nil, errors.New("RFC 3161 timestamp annotation is empty")
	}
	return ts.SignedRFC3161Timestamp, nil
}

// parseCertificates reads PEM certificates, at most max of them.
func parseCertificates(data string, max int) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(data)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if len(certs) == max {
			return nil, fmt.Errorf("more than %d certificates", max)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// lookup finds the value at a dotted path in JSON: object keys, and
// decimal indexes into arrays ("materials.0.uri"). It returns the value as
// text (strings as they are, other scalars as JSON), or why there is none.
func lookup(doc json.RawMessage, path string) (string, error) {
	if len(doc) == 0 {
		return "", errors.New("missing (the statement has no predicate)")
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("unreadable (%v)", err)
	}
	for _, seg := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[seg]
			if !ok {
				return "", errors.New("missing")
			}
			v = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return "", fmt.Errorf("missing (an array of %d has no element %q)", len(x), seg)
			}
			v = x[i]
		default:
			return "", errors.New("missing")
		}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "null", nil
	case map[string]any:
		return "", errors.New("an object, not a value")
	default:
		return "", errors.New("an array, not a value")
	}
}

// annotationText is an optional-section value as `cosign verify -a`
// compares it: strings as they are, other values as JSON.
func annotationText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
