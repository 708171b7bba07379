package kms

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/vouch-project/vouch/trust"
)

// keyVaultAPIVersion is the Key Vault REST API version asked for.
const keyVaultAPIVersion = "7.4"

// keyVault reads certificates from Azure Key Vault's REST API
// (https://learn.microsoft.com/rest/api/keyvault/certificates/get-certificate):
// GET {vault}/certificates/{name}/{version}?api-version=7.4 answers a
// CertificateBundle whose "cer" is the certificate, DER in base64.
type keyVault struct {
	pipeline runtime.Pipeline
}

// newKeyVault returns a Key Vault reader authenticating with cred, sending
// its requests (and nothing else) through client (nil: azcore's default).
func newKeyVault(cred azcore.TokenCredential, client *http.Client) *keyVault {
	opts := &policy.ClientOptions{}
	if client != nil {
		opts.Transport = client
	}
	// The token's scope depends on the vault's cloud: the policy below
	// asks for it per request (keyVaultScope).
	return &keyVault{pipeline: runtime.NewPipeline("vouch", "v1", runtime.PipelineOptions{
		PerRetry: []policy.Policy{&scopedBearer{cred: cred}},
	}, opts)}
}

// scopedBearer adds a bearer token for the scope of the request's vault,
// through one BearerTokenPolicy per scope (each caches its token until
// shortly before it expires).
type scopedBearer struct {
	cred azcore.TokenCredential

	mu       sync.Mutex
	policies map[string]policy.Policy
}

// Do implements policy.Policy.
func (p *scopedBearer) Do(req *policy.Request) (*http.Response, error) {
	scope := keyVaultScope(req.Raw().URL.Host)
	p.mu.Lock()
	bp, ok := p.policies[scope]
	if !ok {
		if p.policies == nil {
			p.policies = map[string]policy.Policy{}
		}
		bp = runtime.NewBearerTokenPolicy(p.cred, []string{scope}, nil)
		p.policies[scope] = bp
	}
	p.mu.Unlock()
	return bp.Do(req)
}

// keyVaultScope is the token scope of a vault host: "https://vault.azure.net/.default"
// for NAME.vault.azure.net, and likewise for the other clouds
// (vault.azure.cn, vault.usgovcloudapi.net) and managed HSMs
// (managedhsm.azure.net); the public cloud's for other hosts.
func keyVaultScope(host string) string {
	h := host
	if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	if _, rest, ok := strings.Cut(h, "."); ok && (strings.HasPrefix(rest, "vault.") || strings.HasPrefix(rest, "managedhsm.")) {
		return "https://" + rest + "/.default"
	}
	return "https://vault.azure.net/.default"
}

// certificate fetches the certificate an identifier names
// (trust.KeyVaultCertificateURI: https://VAULT/certificates/NAME[/VERSION])
// and returns it as PEM. A certificate the vault does not have (404) or
// has disabled is ErrGone.
func (kv *keyVault) certificate(ctx context.Context, id string) ([]byte, error) {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		return nil, errors.New("not an Azure Key Vault certificate identifier (https://VAULT/certificates/NAME[/VERSION])")
	}
	req, err := runtime.NewRequest(ctx, http.MethodGet, id)
	if err != nil {
		return nil, err
	}
	q := req.Raw().URL.Query()
	q.Set("api-version", keyVaultAPIVersion)
	req.Raw().URL.RawQuery = q.Encode()
	req.Raw().Header.Set("Accept", "application/json")
	// Read the body here, bounded, rather than azcore downloading all of it.
	runtime.SkipBodyDownload(req)
	resp, err := kv.pipeline.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxMaterialBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading Key Vault's answer: %w", err)
	}
	if len(body) > MaxMaterialBytes {
		return nil, fmt.Errorf("Key Vault's answer is more than %d bytes", MaxMaterialBytes)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: Key Vault answered 404: %s", ErrGone, keyVaultError(body))
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("Key Vault answered %s: %s", resp.Status, keyVaultError(body))
	}
	return parseCertificateBundle(body)
}

// parseCertificateBundle reads Key Vault's CertificateBundle: its "cer"
// (base64 DER, standard or URL alphabet) as PEM certificates; a disabled
// certificate is ErrGone.
func parseCertificateBundle(body []byte) ([]byte, error) {
	var bundle struct {
		ID         string `json:"id"`
		CER        string `json:"cer"`
		Attributes struct {
			Enabled *bool `json:"enabled"`
		} `json:"attributes"`
	}
	if err := json.Unmarshal(body, &bundle); err != nil {
		return nil, fmt.Errorf("Key Vault's certificate bundle: %w", err)
	}
	if e := bundle.Attributes.Enabled; e != nil && !*e {
		return nil, fmt.Errorf("%w: the certificate %s is disabled", ErrGone, bundle.ID)
	}
	der, err := base64.StdEncoding.DecodeString(bundle.CER)
	if err != nil {
		if der, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(bundle.CER, "=")); err != nil {
			return nil, fmt.Errorf("Key Vault's certificate bundle: cer is not base64: %w", err)
		}
	}
	certs, err := trust.ParseCertificates(der)
	if err != nil {
		return nil, fmt.Errorf("Key Vault's certificate bundle: cer: %w", err)
	}
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out, nil
}

// keyVaultError returns the message of Key Vault's error document
// ({"error":{"code","message"}}), or a short cut of the body.
func keyVaultError(body []byte) string {
	var doc struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil && doc.Error.Code != "" {
		return doc.Error.Code + ": " + doc.Error.Message
	}
	s := string(body)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.TrimSpace(s)
}

// azureCredential is the default credential: Azure workload identity when
// the environment has its federated token file (AZURE_FEDERATED_TOKEN_FILE,
// with AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_AUTHORITY_HOST, as the
// workload identity webhook sets them), else azidentity's
// DefaultAzureCredential (environment, workload identity, managed
// identity, Azure CLI).
func azureCredential(client *http.Client) (azcore.TokenCredential, error) {
	opts := azcore.ClientOptions{}
	if client != nil {
		opts.Transport = client
	}
	if os.Getenv("AZURE_FEDERATED_TOKEN_FILE") != "" {
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts,
			// The authority is the environment's (AZURE_AUTHORITY_HOST):
			// no discovery request to Microsoft's public endpoint.
			DisableInstanceDiscovery: true,
		})
	}
	return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: opts})
}
