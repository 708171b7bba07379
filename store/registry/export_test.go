package registry

import "net"

// TargetsResolvingWith returns Targets allowing allow whose names are
// resolved by r: a test's DNS server.
func TargetsResolvingWith(r *net.Resolver, allow ...string) *Targets {
	return &Targets{Allow: allow, resolver: r}
}
