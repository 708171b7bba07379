package kms

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"regexp"

	gcpkms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// gcpRef is sigstore's gcpkms:// reference: a crypto key, with or without
// a version.
var gcpRef = regexp.MustCompile(`^gcpkms://(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+)(?:/(?:cryptoKeyVersions|versions)/([^/]+))?$`)

// gcpPublicKey fetches the public key of a gcpkms:// key with Google's
// Cloud KMS client, choosing the version as sigstore/sigstore's gcp
// package does (the one named, else the enabled version with the greatest
// name), and closes the client: sigstore's keeps its gRPC connection open
// for the life of the process, which a refresh every hour would pile up.
// Credentials are Google's Application Default Credentials; opts add
// client options (an endpoint, for tests).
func gcpPublicKey(ctx context.Context, uri string, opts []option.ClientOption) (crypto.PublicKey, error) {
	m := gcpRef.FindStringSubmatch(uri)
	if m == nil {
		return nil, errors.New("want gcpkms://projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY[/cryptoKeyVersions/VERSION]")
	}
	client, err := gcpkms.NewKeyManagementClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloud KMS client: %w", err)
	}
	defer client.Close()
	name := m[1] + "/cryptoKeyVersions/" + m[2]
	if m[2] == "" {
		it := client.ListCryptoKeyVersions(ctx, &kmspb.ListCryptoKeyVersionsRequest{Parent: m[1], Filter: "state=ENABLED", OrderBy: "name desc"})
		kv, err := it.Next()
		switch {
		case errors.Is(err, iterator.Done):
			return nil, fmt.Errorf("%w: no enabled version of %s", ErrGone, m[1])
		case err != nil:
			return nil, gcpError(err)
		}
		name = kv.GetName()
	}
	pk, err := client.GetPublicKey(ctx, &kmspb.GetPublicKeyRequest{Name: name})
	if err != nil {
		return nil, gcpError(err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(pk.GetPem()))
	if err != nil {
		return nil, fmt.Errorf("public key of %s: %w", name, err)
	}
	return pub, nil
}

// gcpError marks NOT_FOUND and FAILED_PRECONDITION (a disabled or
// destroyed version) as ErrGone.
func gcpError(err error) error {
	switch status.Code(err) {
	case codes.NotFound, codes.FailedPrecondition:
		return fmt.Errorf("%w: %w", ErrGone, err)
	}
	return err
}
