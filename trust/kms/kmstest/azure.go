package kmstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// KeyVault is a stand-in, over TLS, of Azure Key Vault's certificates and
// of the Microsoft identity platform that issues its tokens for Azure
// workload identity. It answers these documented exchanges:
//
// OpenID discovery and the client-credentials grant with a federated
// assertion (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#third-case-access-token-request-with-a-federated-credential):
//
//	GET  /TENANT/v2.0/.well-known/openid-configuration
//	200 {"token_endpoint":"https://HOST/TENANT/oauth2/v2.0/token",…}
//	POST /TENANT/oauth2/v2.0/token  client_id=CLIENT&grant_type=client_credentials&scope=https://vault.azure.net/.default
//	     &client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=FEDERATED-TOKEN
//	200 {"token_type":"Bearer","expires_in":3599,"access_token":TOKEN}
//
// Get Certificate (https://learn.microsoft.com/rest/api/keyvault/certificates/get-certificate):
//
//	GET /certificates/NAME[/VERSION]?api-version=7.4  Authorization: Bearer TOKEN
//	200 {"id":"https://HOST/certificates/NAME/VERSION","cer":BASE64-DER,"attributes":{"enabled":true}}
//	404 {"error":{"code":"CertificateNotFound","message":"…"}}
//	401 (no or another token)
//
// Get Key (https://learn.microsoft.com/rest/api/keyvault/keys/get-key/get-key),
// the one exchange sigstore's kms/azure client (azkeys) makes for a public key:
//
//	GET /keys/NAME/[VERSION]?api-version=7.5  Authorization: Bearer TOKEN
//	200 {"key":{"kid":"https://HOST/keys/NAME/VERSION","kty":"EC","crv":"P-256","x":B64URL,"y":B64URL,"key_ops":["sign","verify"]},"attributes":{"enabled":true}}
//	    (RSA keys: "kty":"RSA","n":B64URL,"e":B64URL)
//	404 {"error":{"code":"KeyNotFound","message":"…"}}
//
// Key Vault's requests without a token are answered with its documented
// authentication challenge, which azkeys needs before it asks for a token
// (https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses#authentication):
//
//	401 WWW-Authenticate: Bearer authorization="AUTHORITY/TENANT", resource="https://vault.azure.net"
type KeyVault struct {
	// URL is the vault's URI and the authority host (AZURE_AUTHORITY_HOST).
	URL string
	// Client trusts the server's certificate.
	Client *http.Client
	// TenantID, ClientID and FederatedToken are the workload identity's.
	TenantID, ClientID, FederatedToken string
	// TokenRequests counts the tokens issued.
	TokenRequests atomic.Int64
	// Authority is the authority host the challenge names
	// (authorization="AUTHORITY/TENANT"); default URL. Set it before the
	// first request.
	Authority string

	accessToken string
	mu          sync.Mutex
	certs       map[string]*x509.Certificate
	disabled    map[string]bool
	keys        keys
	srv         *httptest.Server
}

// NewKeyVault starts a Key Vault stand-in on a port of 127.0.0.1 with
// httptest's certificate; t's cleanup stops it.
func NewKeyVault(t testing.TB) *KeyVault {
	kv := newKeyVault()
	kv.srv = httptest.NewTLSServer(kv.handler())
	kv.URL, kv.Client = kv.srv.URL, kv.srv.Client()
	t.Cleanup(kv.srv.Close)
	return kv
}

// NewKeyVaultOn starts a Key Vault stand-in on ln, presenting cert: for
// clients that build the vault's URL from its host name themselves
// (sigstore's kms/azure: https://VAULT/), which a test resolves to ln's
// address. Client is nil; t's cleanup stops it.
func NewKeyVaultOn(t testing.TB, ln net.Listener, cert tls.Certificate) *KeyVault {
	kv := newKeyVault()
	kv.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: kv.handler()},
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	kv.srv.StartTLS()
	kv.URL = kv.srv.URL
	t.Cleanup(kv.srv.Close)
	return kv
}

func newKeyVault() *KeyVault {
	return &KeyVault{TenantID: "72f988bf-0000-0000-0000-000000000000", ClientID: "11111111-2222-3333-4444-555555555555",
		FederatedToken: "eyJhbGciOiJSUzI1NiJ9.federated-test-token.not-a-secret", accessToken: "kv-access-token-not-a-secret",
		certs: map[string]*x509.Certificate{}, disabled: map[string]bool{}}
}

func (kv *KeyVault) handler() http.Handler {
	// The identity platform names its endpoints under the host it was
	// asked on.
	discovery := func(w http.ResponseWriter, r *http.Request) {
		base := "https://" + r.Host + "/" + tenant(r)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token_endpoint": base + "/oauth2/v2.0/token", "authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer": base + "/v2.0", "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode", "end_session_endpoint": base + "/oauth2/v2.0/logout"})
	}
	token := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := r.ParseForm(); err != nil || tenant(r) != kv.TenantID || r.PostForm.Get("client_id") != kv.ClientID ||
			r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_assertion") != kv.FederatedToken ||
			r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			!strings.Contains(r.PostForm.Get("scope"), "https://vault.azure.net/.default") {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS700213: No matching federated identity record found"}`)
			return
		}
		kv.TokenRequests.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": kv.accessToken})
	}
	// authorized answers the challenge or a missing api-version itself.
	authorized := func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+kv.accessToken {
			authority := kv.Authority
			if authority == "" {
				authority = kv.URL
			}
			w.Header().Set("WWW-Authenticate", `Bearer authorization="`+strings.TrimSuffix(authority, "/")+"/"+kv.TenantID+`", resource="https://vault.azure.net"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}`)
			return false
		}
		if r.URL.Query().Get("api-version") == "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"code":"BadParameter","message":"The 'api-version' query parameter is missing."}}`)
			return false
		}
		return true
	}
	key := func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		name, version, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/keys/"), "/")
		versions := kv.keys.get(name)
		i := len(versions) - 1
		if version != "" {
			i = -1
			for j := range versions {
				if KeyVersion(j) == version {
					i = j
				}
			}
		}
		if i < 0 {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"code":"KeyNotFound","message":"A key with (name/id) %s was not found in this key vault."}}`, name)
			return
		}
		jwk, err := jsonWebKey(versions[i])
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `{"error":{"code":"InternalError","message":%q}}`, err.Error())
			return
		}
		jwk["kid"] = "https://" + r.Host + "/keys/" + name + "/" + KeyVersion(i)
		jwk["key_ops"] = []string{"sign", "verify"}
		_ = json.NewEncoder(w).Encode(map[string]any{"key": jwk, "attributes": map[string]any{"enabled": true, "recoveryLevel": "Recoverable+Purgeable"}})
	}
	cert := func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/certificates/"), "/")
		kv.mu.Lock()
		c, disabled := kv.certs[name], kv.disabled[name]
		kv.mu.Unlock()
		if c == nil {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"code":"CertificateNotFound","message":"A certificate with (name/id) %s was not found in this key vault."}}`, name)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": kv.URL + "/certificates/" + name + "/0123456789abcdef", "cer": base64.StdEncoding.EncodeToString(c.Raw),
			"attributes": map[string]any{"enabled": !disabled}})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(p, "/certificates/"):
			cert(w, r)
		case r.Method == http.MethodGet && strings.HasPrefix(p, "/keys/"):
			key(w, r)
		case r.Method == http.MethodGet && strings.HasSuffix(p, "/v2.0/.well-known/openid-configuration"):
			discovery(w, r)
		case r.Method == http.MethodPost && strings.HasSuffix(p, "/oauth2/v2.0/token"):
			token(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// KeyVersion is the version identifier of the i-th version (from 0) that
// SetKey gave a key: 32 hex digits, as Key Vault's.
func KeyVersion(i int) string { return fmt.Sprintf("%032x", i+1) }

// jsonWebKey returns the JSON Web Key members (RFC 7517, 7518) of an EC or
// RSA public key as Key Vault writes them.
func jsonWebKey(pub crypto.PublicKey) (map[string]any, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		ecdh, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		raw := ecdh.Bytes() // 0x04 || X || Y
		n := (len(raw) - 1) / 2
		return map[string]any{"kty": "EC", "crv": k.Curve.Params().Name, "x": b64(raw[1 : 1+n]), "y": b64(raw[1+n:])}, nil
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}, nil
	}
	return nil, fmt.Errorf("no JSON Web Key for a %T", pub)
}

// SetKey adds pub (ECDSA or RSA) as the newest version of key name; nil
// deletes the key and its versions.
func (kv *KeyVault) SetKey(name string, pub crypto.PublicKey) { kv.keys.set(name, pub) }

// tenant is the first segment of r's path.
func tenant(r *http.Request) string {
	t, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return t
}

// SetCertificate stores c under name; nil deletes it.
func (kv *KeyVault) SetCertificate(name string, c *x509.Certificate) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if c == nil {
		delete(kv.certs, name)
		return
	}
	kv.certs[name] = c
}

// Disable marks name's certificate disabled (or enabled again).
func (kv *KeyVault) Disable(name string, disabled bool) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.disabled[name] = disabled
}

// WorkloadIdentityEnv writes the federated token into dir and returns the
// environment that the Azure workload identity webhook gives a pod.
func (kv *KeyVault) WorkloadIdentityEnv(t testing.TB, dir string) map[string]string {
	path := filepath.Join(dir, "azure-identity-token")
	if err := os.WriteFile(path, []byte(kv.FederatedToken), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"AZURE_CLIENT_ID": kv.ClientID, "AZURE_TENANT_ID": kv.TenantID, "AZURE_FEDERATED_TOKEN_FILE": path, "AZURE_AUTHORITY_HOST": kv.URL + "/"}
}
