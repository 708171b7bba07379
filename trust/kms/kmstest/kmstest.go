// Package kmstest serves stand-ins of key-management services on
// 127.0.0.1 for tests: HashiCorp Vault's transit keys, AWS KMS, and Azure
// Key Vault keys and certificates with the Microsoft identity platform's token
// endpoint (workload identity). They are NOT the real services: each
// answers the documented REST exchanges that vouch's clients make (the
// requests and responses written in each type's comment), checks the
// credentials it is sent, and lets a test change what it holds (rotate,
// remove) or stop answering.
package kmstest

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// publicPEM returns pub as a PEM PUBLIC KEY block.
func publicPEM(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// keys is a set of named public keys, each with versions, safe for
// concurrent use.
type keys struct {
	mu   sync.Mutex
	keys map[string][]crypto.PublicKey
}

func (k *keys) set(name string, pub crypto.PublicKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = map[string][]crypto.PublicKey{}
	}
	if pub == nil {
		delete(k.keys, name)
		return
	}
	k.keys[name] = append(k.keys[name], pub)
}

func (k *keys) get(name string) []crypto.PublicKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]crypto.PublicKey(nil), k.keys[name]...)
}

// Vault is a stand-in of HashiCorp Vault's transit secrets engine, for the
// one exchange sigstore's hashivault client makes to read a public key
// (https://developer.hashicorp.com/vault/api-docs/secret/transit#read-key):
//
//	GET /v1/transit/keys/NAME   X-Vault-Token: TOKEN
//	200 {"data":{"keys":{"1":{"public_key":"-----BEGIN PUBLIC KEY-----…"}},"latest_version":1,"name":NAME,"type":"ecdsa-p256"}}
//	404 {"errors":[]}            (no such key)
//	403 {"errors":["permission denied"]}  (wrong token)
type Vault struct {
	// URL is the server's address: VAULT_ADDR.
	URL string
	// Token is the token it accepts: VAULT_TOKEN.
	Token string
	// Requests counts the requests served.
	Requests atomic.Int64

	keys keys
	srv  *httptest.Server
}

// NewVault starts a Vault stand-in; t's cleanup stops it.
func NewVault(t testing.TB) *Vault {
	v := &Vault{Token: "hvs.test-token-not-a-secret"}
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.Requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("X-Vault-Token") != v.Token {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"errors":["permission denied"]}`)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/v1/transit/keys/")
		versions := v.keys.get(name)
		if r.Method != http.MethodGet || !ok || len(versions) == 0 {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[]}`)
			return
		}
		ks := map[string]any{}
		for i, pub := range versions {
			ks[fmt.Sprint(i+1)] = map[string]any{"name": "P-256", "public_key": publicPEM(t, pub), "creation_time": "2026-12-07T00:00:00Z"}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"request_id": "0", "lease_id": "", "renewable": false, "lease_duration": 0,
			"data": map[string]any{"keys": ks, "latest_version": len(versions), "name": name, "type": "ecdsa-p256"}})
	}))
	v.URL = v.srv.URL
	t.Cleanup(v.srv.Close)
	return v
}

// SetKey adds pub as NAME's newest version (a rotation); nil deletes the key.
func (v *Vault) SetKey(name string, pub crypto.PublicKey) { v.keys.set(name, pub) }

// Close stops the server: the service is unreachable.
func (v *Vault) Close() { v.srv.Close() }

// AWS is a stand-in of AWS KMS for the two calls sigstore's awskms client
// makes to read a public key, in KMS's JSON 1.1 protocol
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetPublicKey.html,
// API_DescribeKey.html), signed with SigV4 (the stand-in checks the access
// key id only):
//
//	POST /  X-Amz-Target: TrentService.GetPublicKey  {"KeyId":"alias/NAME"}
//	200 {"KeyId":ARN,"PublicKey":BASE64-DER,"KeySpec":"ECC_NIST_P256","KeyUsage":"SIGN_VERIFY","SigningAlgorithms":["ECDSA_SHA_256"]}
//	POST /  X-Amz-Target: TrentService.DescribeKey   {"KeyId":"alias/NAME"}
//	200 {"KeyMetadata":{"KeyId":…,"Arn":…,"KeyState":"Enabled","Enabled":true,"KeySpec":…,"KeyUsage":…,"SigningAlgorithms":[…]}}
//	400 {"__type":"NotFoundException","message":"…"}   (no such key)
type AWS struct {
	// URL is the endpoint: AWS_ENDPOINT_URL_KMS.
	URL string
	// AccessKeyID is the access key it accepts: AWS_ACCESS_KEY_ID.
	AccessKeyID string

	keys keys
	srv  *httptest.Server
}

// NewAWS starts an AWS KMS stand-in; t's cleanup stops it.
func NewAWS(t testing.TB) *AWS {
	a := &AWS{AccessKeyID: "AKIATESTNOTASECRET"}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fail := func(status int, typ, msg string) {
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
		}
		if !strings.Contains(r.Header.Get("Authorization"), "Credential="+a.AccessKeyID+"/") {
			fail(http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
			return
		}
		var in struct{ KeyId string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
			fail(http.StatusBadRequest, "SerializationException", err.Error())
			return
		}
		versions := a.keys.get(in.KeyId)
		if len(versions) == 0 {
			fail(http.StatusBadRequest, "NotFoundException", fmt.Sprintf("Alias %s is not found.", in.KeyId))
			return
		}
		der, err := x509.MarshalPKIXPublicKey(versions[len(versions)-1])
		if err != nil {
			t.Error(err)
		}
		arn := "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		switch r.Header.Get("X-Amz-Target") {
		case "TrentService.GetPublicKey":
			_ = json.NewEncoder(w).Encode(map[string]any{"KeyId": arn, "PublicKey": base64.StdEncoding.EncodeToString(der),
				"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": []string{"ECDSA_SHA_256"}})
		case "TrentService.DescribeKey":
			_ = json.NewEncoder(w).Encode(map[string]any{"KeyMetadata": map[string]any{"KeyId": arn[strings.LastIndex(arn, "/")+1:], "Arn": arn,
				"KeyState": "Enabled", "Enabled": true, "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": []string{"ECDSA_SHA_256"}}})
		default:
			fail(http.StatusBadRequest, "UnknownOperationException", r.Header.Get("X-Amz-Target"))
		}
	}))
	a.URL = a.srv.URL
	t.Cleanup(a.srv.Close)
	return a
}

// SetKey makes pub the key of KeyId id ("alias/NAME"); nil deletes it.
func (a *AWS) SetKey(id string, pub crypto.PublicKey) { a.keys.set(id, pub) }

// Env returns the environment that points AWS's SDK at the stand-in.
func (a *AWS) Env() map[string]string {
	return map[string]string{"AWS_ENDPOINT_URL_KMS": a.URL, "AWS_ACCESS_KEY_ID": a.AccessKeyID, "AWS_SECRET_ACCESS_KEY": "test-secret-not-a-secret",
		"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
}
