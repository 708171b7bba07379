package registry_test

import (
	"context"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	vouch "github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/store/registry"
)

// A Store for a long-running server: tags and referrer listings cached for
// 30 seconds, one registry reached without TLS verification.
func ExampleNew() {
	store, err := registry.New(registry.Options{
		InsecureRegistries: []string{"registry.internal:5000"},
		Limits:             vouch.Limits{MaxBlobBytes: 16 << 20},
		TagTTL:             30 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ref, _ := vouch.ParseReference("registry.internal:5000/team/app:v1")
	repo, err := store.Repository(ctx, ref)
	if err != nil {
		fmt.Println(err)
		return
	}
	desc, err := repo.Resolve(ctx, ref.Version())
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = repo.Referrers(ctx, desc, "", func(page []ocispec.Descriptor) error {
		for _, d := range page {
			fmt.Println(d.ArtifactType, d.Digest)
		}
		return nil
	})
}
