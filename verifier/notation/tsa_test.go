package notation_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/notaryproject/tspclient-go"
	"github.com/notaryproject/tspclient-go/pki"
)

// testTSA is a small RFC 3161 time-stamping authority on 127.0.0.1: it
// answers a TimeStampReq with a TimeStampResp whose token is a CMS
// SignedData (RFC 5652) over a TSTInfo, signed with signed attributes
// content-type, message-digest and signing-certificate-v2 (RFC 5035), as
// real TSAs answer. Neither notation-go nor tspclient-go ships a test TSA.
type testTSA struct {
	root *testCA
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	url  string
}

var (
	oidSHA256          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidContentType     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningCertV2   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidTestTSAPolicy   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
)

// The CMS structures, shaped for encoding.
type (
	contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue // [0] EXPLICIT, encoded by mustExplicit0
	}
	signedData struct {
		Version          int
		DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
		EncapContentInfo encapContentInfo
		Certificates     asn1.RawValue
		SignerInfos      []signerInfo `asn1:"set"`
	}
	encapContentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     []byte `asn1:"explicit,tag:0"`
	}
	signerInfo struct {
		Version            int
		SID                issuerAndSerial
		DigestAlgorithm    pkix.AlgorithmIdentifier
		SignedAttrs        asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          []byte
	}
	issuerAndSerial struct {
		Issuer asn1.RawValue
		Serial *big.Int
	}
	attribute struct {
		Type   asn1.ObjectIdentifier
		Values asn1.RawValue
	}
	signingCertificateV2 struct {
		Certs []essCertIDv2
	}
	essCertIDv2 struct {
		CertHash []byte
	}
)

func newTSA(t testing.TB) *testTSA {
	t.Helper()
	root := newCA(t, "Vouch Test TSA Root")
	key, chain := root.leaf(t, "Vouch Test TSA", leafOptions{timestamping: true})
	tsa := &testTSA{root: root, cert: chain[0], key: key}
	srv := httptest.NewServer(http.HandlerFunc(tsa.serve))
	t.Cleanup(srv.Close)
	tsa.url = srv.URL + "/tsa"
	return tsa
}

// roots is the pool a signer checks the TSA's answer against.
func (tsa *testTSA) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(tsa.root.cert)
	return pool
}

func (tsa *testTSA) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil || r.Header.Get("Content-Type") != tspclient.MediaTypeTimestampQuery {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var req tspclient.Request
	if err := req.UnmarshalBinary(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	token, err := tsa.token(&req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp := tspclient.Response{Status: pki.StatusInfo{Status: pki.StatusGranted}, TimestampToken: asn1.RawValue{FullBytes: token}}
	der, err := resp.MarshalBinary()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", tspclient.MediaTypeTimestampReply)
	_, _ = w.Write(der)
}

// token builds the TimeStampToken for req.
func (tsa *testTSA) token(req *tspclient.Request) ([]byte, error) {
	serialNumber, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	info, err := asn1.Marshal(tspclient.TSTInfo{
		Version:        1,
		Policy:         oidTestTSAPolicy,
		MessageImprint: req.MessageImprint,
		SerialNumber:   serialNumber,
		GenTime:        time.Now().UTC().Truncate(time.Second),
		Accuracy:       tspclient.Accuracy{Seconds: 1},
		Nonce:          req.Nonce,
	})
	if err != nil {
		return nil, err
	}
	infoDigest := sha256.Sum256(info)
	certDigest := sha256.Sum256(tsa.cert.Raw)
	attrs := []attribute{
		mustAttribute(oidContentType, oidTSTInfo),
		mustAttribute(oidMessageDigest, infoDigest[:]),
		mustAttribute(oidSigningCertV2, signingCertificateV2{Certs: []essCertIDv2{{CertHash: certDigest[:]}}}),
	}
	// The signature covers the DER SET OF the attributes; in the SignerInfo
	// the same bytes carry the [0] IMPLICIT tag.
	set, err := asn1.MarshalWithParams(attrs, "set")
	if err != nil {
		return nil, err
	}
	setDigest := sha256.Sum256(set)
	sig, err := ecdsa.SignASN1(rand.Reader, tsa.key, setDigest[:])
	if err != nil {
		return nil, err
	}
	signedAttrs := append([]byte{0xa0}, set[1:]...)
	var certs []byte
	if req.CertReq {
		certs = tsa.cert.Raw
	}
	sd, err := asn1.Marshal(signedData{
		Version:          3,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{{Algorithm: oidSHA256}},
		EncapContentInfo: encapContentInfo{ContentType: oidTSTInfo, Content: info},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs},
		SignerInfos: []signerInfo{{
			Version:            1,
			SID:                issuerAndSerial{Issuer: asn1.RawValue{FullBytes: tsa.cert.RawIssuer}, Serial: tsa.cert.SerialNumber},
			DigestAlgorithm:    pkix.AlgorithmIdentifier{Algorithm: oidSHA256},
			SignedAttrs:        asn1.RawValue{FullBytes: signedAttrs},
			SignatureAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256},
			Signature:          sig,
		}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{ContentType: oidSignedData, Content: asn1.RawValue{FullBytes: mustExplicit0(sd)}})
}

func mustAttribute(oid asn1.ObjectIdentifier, value any) attribute {
	der, err := asn1.Marshal(value)
	if err != nil {
		panic(err)
	}
	return attribute{Type: oid, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: der}}
}

// mustExplicit0 wraps der in an [0] EXPLICIT tag.
func mustExplicit0(der []byte) []byte {
	out, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der})
	if err != nil {
		panic(err)
	}
	return out
}
