package main

import (
	"maps"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/vouch-project/vouch/store/registry"
)

// registerTargetFlags adds vouch serve's flag naming internal registries
// to fs, into f.
func registerTargetFlags(fs *pflag.FlagSet, f *graphFlags) {
	fs.StringArrayVar(&f.allowInternal, "allow-internal-registry", nil,
		"reach this registry `HOST[:PORT]` although it is loopback, link-local or cluster-internal (repeatable; see docs/serving.md, Targets vouch will call)")
}

// serveTargets returns the hosts vouch serve may reach although they are
// internal: those the flags and the cluster's configuration name (its
// scopes, its insecure registries, the hosts of its registry credentials).
// Image names in Pod specs, and Pods' pull secrets, name none.
func serveTargets(gf *graphFlags, creds map[string]auth.Credential) *registry.Targets {
	allow := slices.Concat(gf.allowInternal, gf.named, gf.insecure, slices.Sorted(maps.Keys(creds)))
	for i, h := range allow {
		allow[i] = strings.ToLower(h)
	}
	slices.Sort(allow)
	return &registry.Targets{Allow: slices.Compact(allow)}
}
