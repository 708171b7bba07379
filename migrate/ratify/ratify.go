// Package ratify converts Ratify v1's configuration resources
// (config.ratify.deislabs.io/v1beta1: Verifier, Store,
// KeyManagementProvider, CertificateStore, Policy and their Namespaced
// forms) into vouch's custom resources: one ClusterVouchConfig for the
// cluster-scoped ones and one VouchConfig per namespace for the namespaced
// ones, with the ConfigMaps they refer to. It says, resource by resource,
// what was converted, what changed on the way, and what could not be
// converted and why (Report).
//
// It reads Ratify's YAML with vouch's own strict decoder (an unknown field
// is an error naming its path) into its own types, and links nothing of
// Kubernetes. Every resource it writes has been read back with
// config.ParseResources. docs/migrating-from-ratify.md describes the
// mapping.
package ratify

import (
	"fmt"
	"strings"
)

// Outcome is what became of one input resource.
type Outcome int

const (
	// Converted: the resource has an equivalent in the output.
	Converted Outcome = iota
	// ConvertedWithChanges: converted, but something differs; the notes
	// say what.
	ConvertedWithChanges
	// NotConverted: nothing of the resource is in the output; the notes
	// say why.
	NotConverted
	// Ignored: the document is not a Ratify configuration resource (a
	// Deployment, a Gatekeeper Provider...).
	Ignored
)

// String is the outcome as the report writes it.
func (o Outcome) String() string {
	switch o {
	case Converted:
		return "converted"
	case ConvertedWithChanges:
		return "converted with changes"
	case NotConverted:
		return "not converted"
	}
	return "ignored"
}

// Entry is the report's line for one input document.
type Entry struct {
	// Where names the input and the document: "ratify.yaml: document 2".
	Where string
	// Resource names the resource: "Verifier verifier-notation".
	Resource string
	// Outcome is what became of it.
	Outcome Outcome
	// Into says where it went: "ClusterVouchConfig default: verifier
	// verifier-notation". Empty when not converted.
	Into string
	// Notes are the changes (converted with changes) or the reasons (not
	// converted, ignored).
	Notes []string
}

// String is the report line: "ratify.yaml: document 2: Verifier
// verifier-notation: converted with changes: …".
func (e *Entry) String() string {
	s := fmt.Sprintf("%s: %s: %s", e.Where, e.Resource, e.Outcome)
	if e.Into != "" && e.Outcome != NotConverted {
		s += " (" + e.Into + ")"
	}
	if len(e.Notes) > 0 {
		s += ": " + strings.Join(e.Notes, "; ")
	}
	return s
}

// change records a difference between the resource and its conversion.
func (e *Entry) change(format string, args ...any) {
	if e.Outcome == NotConverted {
		return
	}
	e.Outcome = ConvertedWithChanges
	e.Notes = append(e.Notes, fmt.Sprintf(format, args...))
}

// fail marks the resource not converted, for the reason given; the changes
// noted before no longer matter.
func (e *Entry) fail(format string, args ...any) {
	if e.Outcome != NotConverted {
		e.Notes = nil
	}
	e.Outcome = NotConverted
	e.Into = ""
	e.Notes = append(e.Notes, fmt.Sprintf(format, args...))
}

func (e *Entry) failed() bool { return e.Outcome == NotConverted }

// Input is one input: a name for messages (a file name, "-" or
// "(stdin)") and its YAML documents.
type Input struct {
	// Name names the input in messages. Required.
	Name string
	// Data holds one or more YAML (or JSON) documents.
	Data []byte
}

// Options are the names Convert gives what it writes.
type Options struct {
	// Name is the name of the ClusterVouchConfig and of each VouchConfig.
	// Optional; default "default".
	Name string
	// Namespace is vouch's namespace, where the ClusterVouchConfig's
	// ConfigMap goes (its references name no namespace, so they read
	// vouch's). Optional; default "vouch".
	Namespace string
}

// Names of what Convert writes besides the resources.
const (
	// ConfigMapName is the ConfigMap that holds the Notation trust policies
	// (key VERIFIER.trustpolicy.json), in vouch's namespace for the
	// ClusterVouchConfig and in the tenant's for a VouchConfig.
	ConfigMapName = "vouch-ratify"
	// SigstoreConfigMapName is the ConfigMap, key SigstoreKey, that must
	// hold a Sigstore trusted_root.json when a cosign verifier checks
	// transparency-log entries or keyless certificates. Convert cannot
	// write its content; the report says so.
	SigstoreConfigMapName = "vouch-sigstore"
	// SigstoreKey is the key of SigstoreConfigMapName.
	SigstoreKey = "trusted_root.json"
	// DockerConfigSecretName is the kubernetes.io/dockerconfigjson Secret
	// a Store's dockerConfig file becomes.
	DockerConfigSecretName = "vouch-registry"
)

// Result is a conversion.
type Result struct {
	// Manifest holds the vouch resources (a ClusterVouchConfig first, then
	// one VouchConfig per namespace) as YAML documents, read back by
	// config.ParseResources; empty when nothing was converted.
	Manifest []byte
	// ConfigMaps holds the ConfigMaps the resources refer to that
	// Convert could fill (the Notation trust policies), as YAML
	// documents; empty when there are none.
	ConfigMaps []byte
	// Report has one entry per input document, in input order.
	Report []*Entry
}

// Complete reports whether every Ratify resource was converted (with or
// without changes).
func (r *Result) Complete() bool {
	for _, e := range r.Report {
		if e.Outcome == NotConverted {
			return false
		}
	}
	return true
}
