package config

import "github.com/vouch-project/vouch/trust"

// Refs lists the Secret and ConfigMap references s names (registries,
// trust stores, verifiers), in the order of the document, each as written
// (a reference without a namespace reads the reader's default one). A
// source that serves custom resources reads each of them before Build,
// and hands Build a trust.Resolver holding what it read.
func (s *Spec) Refs() []trust.Ref {
	var out []trust.Ref
	for _, src := range s.sources("") {
		if src.ref != nil {
			out = append(out, *src.ref)
		}
	}
	return out
}
