// Package code holds what vouch's policies as code share, whatever their
// language: the input document they read (Input, versioned InputVersion,
// documented in docs/policy-rego.md), their answer (Answer), and the
// compiled form the config policy evaluates (Program). The engines live
// in its subpackages, rego (OPA v1) and cel (cel-go); this package links
// neither.
package code

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/vouch-project/vouch"
)

// InputVersion is the version of the input document. It changes only when
// a field changes meaning or goes away; fields are added within a version.
const InputVersion = "vouch.policy.input/v1"

// Program is a compiled policy as code: Rego or CEL.
type Program interface {
	// Eval evaluates the program over one input document (Input). An
	// error means the program could not decide (a runtime error, a
	// timeout, an answer of the wrong shape): the caller fails closed.
	Eval(ctx context.Context, input map[string]any) (Answer, error)
}

// Answer is what a program says about one subject.
type Answer struct {
	// Deny holds the reasons to deny, sorted; none means allow.
	Deny []string
	// Warn holds warnings, sorted: the subject is allowed with them when
	// nothing denies it.
	Warn []string
}

// Subject says what the input document is about.
type Subject struct {
	// Ref is the subject, pinned to its digest when it resolved.
	Ref vouch.Reference
	// Namespace is the Kubernetes namespace of the request; "" for the CLI
	// and requests without one.
	Namespace string
	// Scope is the name of the config policy's scope that selected the
	// program.
	Scope string
}

// Input returns the input document of a program: the subject and its
// report tree, as plain JSON values (map[string]any, []any, string, bool,
// int64 for whole numbers, float64 otherwise) so that Rego and CEL see the
// same document whether the tree comes from a live verification or from a
// saved report. Every field is present, with an empty value when it has
// none, so that CEL expressions can read any field of any node.
//
// Verifier details go through a JSON round trip, as they would through a
// saved report; details that cannot be encoded are replaced by an
// "error" entry.
func Input(s Subject, root *vouch.Node) map[string]any {
	ref := s.Ref
	doc := map[string]any{
		"version":    InputVersion,
		"subject":    ref.String(),
		"repository": ref.Name(),
		"registry":   ref.Registry,
		"tag":        ref.Tag,
		"digest":     ref.Digest.String(),
		"namespace":  s.Namespace,
		"scope":      s.Scope,
	}
	nodes := []any{}
	var graph map[string]any
	if root != nil {
		graph = node(root, "", 0, &nodes)
	}
	if graph == nil {
		doc["graph"] = map[string]any{}
		doc["referrers"] = []any{}
		doc["manifests"] = []any{}
	} else {
		doc["graph"] = graph
		doc["referrers"] = graph["referrers"]
		doc["manifests"] = graph["manifests"]
	}
	doc["nodes"] = nodes
	return doc
}

// node converts n and appends it and each node below it to flat, parents
// first.
func node(n *vouch.Node, parent string, depth int, flat *[]any) map[string]any {
	annotations := make(map[string]any, len(n.Annotations))
	for k, v := range n.Annotations {
		annotations[k] = v
	}
	results := make([]any, 0, len(n.Results))
	for _, r := range n.Results {
		claims := make([]any, 0, len(r.Claims))
		for _, c := range r.Claims {
			claims = append(claims, map[string]any{
				"kind":          string(c.Kind),
				"predicateType": c.PredicateType,
				"outcome":       string(c.Outcome),
				"reason":        c.Reason,
			})
		}
		results = append(results, map[string]any{
			"verifier": r.Verifier,
			"outcome":  string(r.Outcome),
			"reason":   r.Reason,
			"details":  details(r.Details),
			"claims":   claims,
		})
	}
	platform := map[string]any{}
	if p := n.Platform; p != nil {
		platform = map[string]any{"os": p.OS, "architecture": p.Architecture, "variant": p.Variant, "osVersion": p.OSVersion}
	}
	m := map[string]any{
		"relation":     string(n.Relation),
		"source":       string(n.Source),
		"mediaType":    n.MediaType,
		"artifactType": n.ArtifactType,
		"digest":       n.Digest.String(),
		"size":         n.Size,
		"platform":     platform,
		"annotations":  annotations,
		"outcome":      string(n.Outcome),
		"reason":       n.Reason,
		"verified":     n.Outcome == vouch.Passed,
		"results":      results,
		"parent":       parent,
		"depth":        int64(depth),
	}
	// The flat list holds the same node, children and all: no copy, and
	// the Rego engine converts each node once.
	*flat = append(*flat, m)
	self := n.Digest.String()
	children := func(nodes []*vouch.Node) []any {
		out := make([]any, 0, len(nodes))
		for _, c := range nodes {
			out = append(out, node(c, self, depth+1, flat))
		}
		return out
	}
	m["manifests"] = children(n.Manifests)
	m["referrers"] = children(n.Referrers)
	return m
}

// details returns d as plain JSON values: the common types are converted
// directly, the others by a JSON round trip, which is what a saved report
// does to all of them.
func details(d map[string]any) map[string]any {
	if len(d) == 0 {
		return map[string]any{}
	}
	out := make(map[string]any, len(d))
	for k, v := range d {
		pv, ok := plainDirect(v)
		if !ok {
			return detailsJSON(d)
		}
		out[k] = pv
	}
	return out
}

// plainDirect converts v to plain JSON values when its type is one that
// details commonly hold, as encoding/json would write and read it back;
// false for other types.
func plainDirect(v any) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case string, bool, int64, float64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint32:
		return int64(x), true
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			out[k] = s
		}
		return out, true
	case []map[string]string:
		out := make([]any, len(x))
		for i, m := range x {
			out[i], _ = plainDirect(m)
		}
		return out, true
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			pe, ok := plainDirect(e)
			if !ok {
				return nil, false
			}
			out[i] = pe
		}
		return out, true
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			pe, ok := plainDirect(e)
			if !ok {
				return nil, false
			}
			out[k] = pe
		}
		return out, true
	case []map[string]any:
		out := make([]any, len(x))
		for i, m := range x {
			pm, ok := plainDirect(m)
			if !ok {
				return nil, false
			}
			out[i] = pm
		}
		return out, true
	}
	return nil, false
}

// detailsJSON returns d as plain JSON values by a JSON round trip.
func detailsJSON(d map[string]any) map[string]any {
	data, err := json.Marshal(d)
	if err != nil {
		return map[string]any{"error": "details could not be encoded: " + err.Error()}
	}
	var out map[string]any
	if err := Decode(data, &out); err != nil {
		return map[string]any{"error": "details could not be decoded: " + err.Error()}
	}
	return out
}

// Decode decodes JSON data into v as the input document holds values:
// whole numbers as int64, other numbers as float64.
func Decode(data []byte, v *map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	*v = plain(raw).(map[string]any)
	return nil
}

// plain replaces json.Number values below v with int64 or float64.
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
		return x
	case json.Number:
		if !strings.ContainsAny(x.String(), ".eE") {
			if i, err := x.Int64(); err == nil {
				return i
			}
		}
		f, _ := x.Float64()
		return f
	}
	return v
}
