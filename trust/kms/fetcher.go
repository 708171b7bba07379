package kms

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"google.golang.org/api/option"

	"github.com/vouch-project/vouch/trust"
)

// Options configure the Providers.
type Options struct {
	// AzureCredential authenticates to Azure Key Vault for certificates.
	// Optional; default Azure workload identity from the environment, else
	// azidentity's DefaultAzureCredential (azureCredential). Never logged.
	AzureCredential azcore.TokenCredential
	// HTTPClient sends the requests for Azure Key Vault certificates and
	// their tokens. Optional; default azcore's client (TLS verified).
	HTTPClient *http.Client
	// GCPClientOptions are added to the Google Cloud KMS client's (an
	// endpoint, credentials). Optional; default Application Default
	// Credentials and Google's endpoint.
	GCPClientOptions []option.ClientOption
}

// Providers fetches trust material from every provider this package
// knows, by the URI's form: cosign KMS key URIs (trust.IsKMSKey), and
// Azure Key Vault certificate identifiers (https://…/certificates/…).
type Providers struct {
	opts Options

	once     sync.Once
	keyVault *keyVault
	kvErr    error
}

// New returns the Providers of o.
func New(o Options) *Providers { return &Providers{opts: o} }

var _ Fetcher = (*Providers)(nil)

// Fetch implements Fetcher.
func (p *Providers) Fetch(ctx context.Context, uri string) ([]byte, error) {
	switch {
	case trust.IsKMSKey(uri):
		return publicKey(ctx, uri, p.opts.GCPClientOptions)
	case strings.HasPrefix(uri, "https://") && strings.Contains(uri, "/certificates/"):
		p.once.Do(func() {
			cred := p.opts.AzureCredential
			if cred == nil {
				cred, p.kvErr = azureCredential(p.opts.HTTPClient)
			}
			if p.kvErr == nil {
				p.keyVault = newKeyVault(cred, p.opts.HTTPClient)
			}
		})
		if p.kvErr != nil {
			return nil, p.kvErr
		}
		return p.keyVault.certificate(ctx, uri)
	}
	return nil, errors.New("neither a cosign KMS key URI (" + strings.Join(trust.KMSSchemes(), ", ") + ") nor an Azure Key Vault certificate (https://VAULT/certificates/NAME)")
}
