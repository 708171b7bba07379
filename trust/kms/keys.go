package kms

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/aws/smithy-go"
	"github.com/sigstore/sigstore/pkg/signature/kms/aws"
	"github.com/sigstore/sigstore/pkg/signature/kms/azure"
	"github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"google.golang.org/api/option"

	"github.com/vouch-project/vouch/trust"
)

// publicKey fetches the public key of a cosign KMS key URI, as `cosign
// verify --key URI` does, and returns it as a PEM "PUBLIC KEY" block.
// awskms, azurekms and hashivault keys go through sigstore/sigstore's KMS
// packages (their credentials come from the environment, as cosign's do);
// gcpkms keys through Google's Cloud KMS client (gcpPublicKey). Only these
// four schemes are accepted: sigstore's kms.Get would run a plugin
// executable for any other.
func publicKey(ctx context.Context, uri string, gcpOpts []option.ClientOption) ([]byte, error) {
	var pub crypto.PublicKey
	var err error
	switch {
	case strings.HasPrefix(uri, "awskms://"):
		var sv *aws.SignerVerifier
		if sv, err = aws.LoadSignerVerifier(ctx, uri); err == nil {
			pub, err = sv.PublicKey(options.WithContext(ctx))
		}
	case strings.HasPrefix(uri, "azurekms://"):
		var sv *azure.SignerVerifier
		if sv, err = azure.LoadSignerVerifier(ctx, uri); err == nil {
			pub, err = sv.PublicKey(options.WithContext(ctx))
		}
	case strings.HasPrefix(uri, "hashivault://"):
		// Vault's client takes no context: its own timeout bounds the
		// request (VAULT_CLIENT_TIMEOUT, default 60s).
		var sv *hashivault.SignerVerifier
		if sv, err = hashivault.LoadSignerVerifier(uri, crypto.SHA256); err == nil {
			pub, err = sv.PublicKey(options.WithContext(ctx))
		}
	case strings.HasPrefix(uri, "gcpkms://"):
		pub, err = gcpPublicKey(ctx, uri, gcpOpts)
	default:
		return nil, fmt.Errorf("not a KMS key URI (%s)", strings.Join(trust.KMSSchemes(), ", "))
	}
	if err != nil {
		if gone(err) {
			return nil, fmt.Errorf("%w: %w", ErrGone, err)
		}
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// gone reports whether err is a service's definitive answer that a key
// does not exist or is disabled: AWS KMS's NotFoundException and
// DisabledException, Azure's 404, Vault's empty read of a transit key
// (sigstore reports it as "could not read data").
func gone(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "NotFoundException" || ae.ErrorCode() == "DisabledException") {
		return true
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == 404 {
		return true
	}
	return strings.Contains(err.Error(), "could not read data from transit key path")
}
