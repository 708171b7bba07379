// Package store routes each subject to the store that holds it: an OCI image
// layout on disk (store/ocilayout) or a registry (store/registry).
package store

import (
	"context"
	"fmt"

	"github.com/vouch-project/vouch"
)

// Router is a vouch.Store that opens "oci-layout:" references in Layout and
// every other reference in Registry.
type Router struct {
	// Layout opens OCI image layouts. Optional: without it, layout
	// references are an error.
	Layout vouch.Store
	// Registry opens registry repositories. Optional: without it, registry
	// references are an error.
	Registry vouch.Store
}

// Repository opens ref in the store for its kind.
func (r Router) Repository(ctx context.Context, ref vouch.Reference) (vouch.Repository, error) {
	s, kind := r.Registry, "registry"
	if ref.IsLayout() {
		s, kind = r.Layout, "OCI layout"
	}
	if s == nil {
		return nil, fmt.Errorf("%s: no %s store is configured", ref, kind)
	}
	return s.Repository(ctx, ref)
}
