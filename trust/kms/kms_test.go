package kms_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/trust/kms"
	"github.com/vouch-project/vouch/trust/kms/kmstest"
)

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// samePublicKey fails unless pemData holds exactly pub.
func samePublicKey(t *testing.T, pemData []byte, pub crypto.PublicKey) {
	t.Helper()
	keys, err := trust.ParsePublicKeys(pemData)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys[0].(*ecdsa.PublicKey).Equal(pub) {
		t.Fatalf("fetched another key than the service holds")
	}
}

func setenv(t *testing.T, env map[string]string) {
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// TestHashiVault: recorded exchange. hashivault:// keys through
// sigstore's hashivault client against kmstest.Vault, which answers Vault's
// documented transit "read key" exchange (the real Vault server is not
// built here: docs/key-management.md).
func TestHashiVault(t *testing.T) {
	v := kmstest.NewVault(t)
	setenv(t, map[string]string{"VAULT_ADDR": v.URL, "VAULT_TOKEN": v.Token})
	k1, k2 := newKey(t), newKey(t)
	v.SetKey("release", &k1.PublicKey)
	p := kms.New(kms.Options{})
	ctx := context.Background()
	data, err := p.Fetch(ctx, "hashivault://release")
	if err != nil {
		t.Fatal(err)
	}
	samePublicKey(t, data, &k1.PublicKey)
	v.SetKey("release", &k2.PublicKey) // rotation: the newest version
	data, err = p.Fetch(ctx, "hashivault://release")
	if err != nil {
		t.Fatal(err)
	}
	samePublicKey(t, data, &k2.PublicKey)
	if _, err := p.Fetch(ctx, "hashivault://missing"); !errors.Is(err, kms.ErrGone) {
		t.Fatalf("missing key: err = %v, want ErrGone", err)
	}
	t.Setenv("VAULT_TOKEN", "wrong")
	if _, err := p.Fetch(ctx, "hashivault://release"); err == nil || errors.Is(err, kms.ErrGone) {
		t.Fatalf("wrong token: err = %v, want a failure that is not ErrGone", err)
	} else if strings.Contains(err.Error(), v.Token) {
		t.Fatalf("the error shows the token: %v", err)
	}
}

// TestAWS: recorded exchange. awskms:// keys through sigstore's awskms
// client (AWS SDK v2, SigV4) against kmstest.AWS, which answers KMS's
// documented GetPublicKey and DescribeKey (JSON 1.1); AWS_ENDPOINT_URL_KMS
// points the SDK at it.
func TestAWS(t *testing.T) {
	a := kmstest.NewAWS(t)
	setenv(t, a.Env())
	k := newKey(t)
	a.SetKey("alias/release", &k.PublicKey)
	p := kms.New(kms.Options{})
	data, err := p.Fetch(context.Background(), "awskms:///alias/release")
	if err != nil {
		t.Fatal(err)
	}
	samePublicKey(t, data, &k.PublicKey)
	if _, err := p.Fetch(context.Background(), "awskms:///alias/missing"); !errors.Is(err, kms.ErrGone) {
		t.Fatalf("missing key: err = %v, want ErrGone", err)
	}
}

// gcpKMS is a stand-in of Cloud KMS's gRPC service (recorded exchange):
// ListCryptoKeyVersions (enabled versions, newest first) and GetPublicKey,
// as documented in google.cloud.kms.v1.
type gcpKMS struct {
	kmspb.UnimplementedKeyManagementServiceServer
	versions map[string][]crypto.PublicKey // by crypto key name
}

func (g *gcpKMS) ListCryptoKeyVersions(_ context.Context, r *kmspb.ListCryptoKeyVersionsRequest) (*kmspb.ListCryptoKeyVersionsResponse, error) {
	vs, ok := g.versions[r.Parent]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "CryptoKey %s not found.", r.Parent)
	}
	out := &kmspb.ListCryptoKeyVersionsResponse{}
	for i := len(vs); i >= 1; i-- {
		out.CryptoKeyVersions = append(out.CryptoKeyVersions, &kmspb.CryptoKeyVersion{Name: r.Parent + "/cryptoKeyVersions/" + string(rune('0'+i)),
			State: kmspb.CryptoKeyVersion_ENABLED, Algorithm: kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256})
	}
	out.TotalSize = int32(len(out.CryptoKeyVersions))
	return out, nil
}

func (g *gcpKMS) GetPublicKey(_ context.Context, r *kmspb.GetPublicKeyRequest) (*kmspb.PublicKey, error) {
	key, ver, _ := strings.Cut(r.Name, "/cryptoKeyVersions/")
	vs := g.versions[key]
	if len(ver) != 1 || int(ver[0]-'1') >= len(vs) {
		return nil, status.Errorf(codes.NotFound, "CryptoKeyVersion %s not found.", r.Name)
	}
	der, err := x509.MarshalPKIXPublicKey(vs[ver[0]-'1'])
	if err != nil {
		return nil, err
	}
	pemText := "-----BEGIN PUBLIC KEY-----\n" + wrap64(der) + "-----END PUBLIC KEY-----\n"
	return &kmspb.PublicKey{Pem: pemText, Name: r.Name, Algorithm: kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256}, nil
}

func wrap64(der []byte) string {
	var b strings.Builder
	s := base64Std(der)
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s + "\n"
}

// TestGCP: recorded exchange. gcpkms:// keys through Google's Cloud KMS
// client against an in-process gRPC server implementing the documented
// KeyManagementService calls; GCPClientOptions point the client at it.
func TestGCP(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	const key = "projects/p/locations/global/keyRings/r/cryptoKeys/release"
	g := &gcpKMS{versions: map[string][]crypto.PublicKey{key: {&k1.PublicKey, &k2.PublicKey}}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	kmspb.RegisterKeyManagementServiceServer(srv, g)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	p := kms.New(kms.Options{GCPClientOptions: []option.ClientOption{option.WithEndpoint(lis.Addr().String()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}})
	ctx := context.Background()
	for _, tc := range []struct {
		uri  string
		want crypto.PublicKey
	}{
		{"gcpkms://" + key, &k2.PublicKey}, // the newest enabled version
		{"gcpkms://" + key + "/cryptoKeyVersions/1", &k1.PublicKey},
		{"gcpkms://" + key + "/versions/2", &k2.PublicKey},
	} {
		data, err := p.Fetch(ctx, tc.uri)
		if err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		samePublicKey(t, data, tc.want)
	}
	if _, err := p.Fetch(ctx, "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/missing"); !errors.Is(err, kms.ErrGone) {
		t.Fatalf("missing key: err = %v, want ErrGone", err)
	}
}

// selfSigned returns a self-signed CA certificate.
func selfSigned(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAzureKeyVaultCertificate: recorded exchange. Certificates from
// kmstest.KeyVault over TLS, with a token that azidentity's
// WorkloadIdentityCredential gets by exchanging the federated token file
// (AZURE_FEDERATED_TOKEN_FILE) at the authority host (AZURE_AUTHORITY_HOST).
func TestAzureKeyVaultCertificate(t *testing.T) {
	kv := kmstest.NewKeyVault(t)
	setenv(t, kv.WorkloadIdentityEnv(t, t.TempDir()))
	ca := selfSigned(t, "ca.example")
	kv.SetCertificate("notation-ca", ca)
	p := kms.New(kms.Options{HTTPClient: kv.Client})
	ctx := context.Background()
	uri := trust.AzureKeyVault{VaultURI: kv.URL + "/", Certificates: []trust.KeyVaultCertificate{{Name: "notation-ca"}}}.URIs()[0]
	data, err := p.Fetch(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := trust.ParsePEMCertificates(data)
	if err != nil || len(certs) != 1 || !certs[0].Equal(ca) {
		t.Fatalf("certificates = %v, %v; want the vault's", certs, err)
	}
	if kv.TokenRequests.Load() == 0 {
		t.Fatal("no token was exchanged")
	}
	kv.Disable("notation-ca", true)
	if _, err := p.Fetch(ctx, uri); !errors.Is(err, kms.ErrGone) {
		t.Fatalf("disabled: err = %v, want ErrGone", err)
	}
	kv.SetCertificate("notation-ca", nil)
	if _, err := p.Fetch(ctx, uri); !errors.Is(err, kms.ErrGone) {
		t.Fatalf("deleted: err = %v, want ErrGone", err)
	}
	// Another federated token: no token, no certificate, and not "gone".
	setenv(t, map[string]string{"AZURE_CLIENT_ID": "someone-else"})
	other := kms.New(kms.Options{HTTPClient: kv.Client})
	if _, err := other.Fetch(ctx, uri); err == nil || errors.Is(err, kms.ErrGone) {
		t.Fatalf("unknown identity: err = %v, want an authentication failure", err)
	}
}

// TestNotKMS: other schemes are refused before any provider runs
// (sigstore's kms.Get would run a plugin executable for them).
func TestNotKMS(t *testing.T) {
	p := kms.New(kms.Options{})
	for _, uri := range []string{"k8s://ns/secret", "pkcs11:token=x", "sigstore-kms-evil://x", "http://vault/certificates/x"} {
		if _, err := p.Fetch(context.Background(), uri); err == nil {
			t.Errorf("%s: no error", uri)
		}
	}
}
