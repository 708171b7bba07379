package gatekeeper

import (
	"encoding/json"
	"strconv"
	"sync"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/untrusted"
)

// verdictFields are the fields of a verify value that depend on the report
// alone, in the value's order: their encoding is kept per cached verdict
// (see encodings) and spliced into each answer (see appendValue).
type verdictFields struct {
	// Verdict is allowed or denied.
	Verdict vouch.Verdict `json:"verdict"`
	// Reason explains the verdict: the requirement that failed, or what
	// satisfied the policy.
	Reason string `json:"reason"`
	// Mode is the policy mode that applied (enforce, warn, audit).
	// Optional.
	Mode vouch.Mode `json:"mode,omitempty"`
	// Waived is true when the requirements were not met and the mode let
	// the image run. Optional.
	Waived bool `json:"waived,omitempty"`
	// Failures lists the nodes of the graph that failed a check or could
	// not be checked, parents first, at most MaxFailures. Optional.
	Failures []Failure `json:"failures,omitempty"`
	// FailuresOmitted counts the failed nodes beyond MaxFailures. Optional.
	FailuresOmitted int `json:"failuresOmitted,omitempty"`
	// Explanations say why each unmet requirement is not met, at most
	// MaxExplanations, their texts cut at MaxExplanationText bytes.
	// Optional.
	Explanations []vouch.Explanation `json:"explanations,omitempty"`
	// ExplanationsOmitted counts the explanations beyond MaxExplanations.
	// Optional.
	ExplanationsOmitted int `json:"explanationsOmitted,omitempty"`
	// Graph is the report tree (report-format.md), when asked for.
	// Optional.
	Graph *vouch.Node `json:"graph,omitempty"`
}

func newVerdict(r *vouch.Report, graph bool) verdictFields {
	f := verdictFields{Verdict: r.Verdict, Reason: r.Reason, Mode: r.Mode, Waived: r.Waived}
	if r.Root != nil {
		r.Root.Walk(func(n *vouch.Node, _ int) {
			if n.Outcome != vouch.Failed && n.Outcome != vouch.Errored {
				return
			}
			if len(f.Failures) == MaxFailures {
				f.FailuresOmitted++
				return
			}
			f.Failures = append(f.Failures, Failure{Digest: n.Digest, ArtifactType: n.ArtifactType, Outcome: n.Outcome, Reason: n.Reason})
		})
	}
	for i, e := range r.Explanations {
		if i == MaxExplanations {
			f.ExplanationsOmitted = len(r.Explanations) - i
			break
		}
		f.Explanations = append(f.Explanations, boundedExplanation(e))
	}
	if graph {
		f.Graph = r.Root
	}
	return f
}

// boundedExplanation is e with its texts cut at MaxExplanationText bytes,
// so that a verify value stays small whatever the verifiers said.
func boundedExplanation(e vouch.Explanation) vouch.Explanation {
	e.Reason = untrusted.Cut(e.Reason, MaxExplanationText)
	e.Wanted = untrusted.Cut(e.Wanted, MaxExplanationText)
	if len(e.Found) > 0 {
		found := make([]vouch.Finding, len(e.Found))
		for i, fd := range e.Found {
			fd.Reason = untrusted.Cut(fd.Reason, MaxExplanationText)
			fd.Signer = untrusted.Cut(fd.Signer, MaxExplanationText)
			found[i] = fd
		}
		e.Found = found
	}
	return e
}

// encodeVerdict returns the encoding of r's verdict fields, with the graph
// when graph is true.
func encodeVerdict(r *vouch.Report, graph bool) ([]byte, error) {
	return json.Marshal(newVerdict(r, graph))
}

// valueParts are what a verify value is encoded from: the per-request
// fields and the encoded verdictFields.
type valueParts struct {
	report             *vouch.Report
	traceID, timestamp string
	verdict            []byte
}

// appendValue appends the encoding of a verify value (its fields are in
// the package documentation), spliced from the encoded verdict fields: the
// same bytes as json.Marshal gives for the value as a struct of its fields
// (the tests check it).
func appendValue(b []byte, v *valueParts) []byte {
	b = append(b, `{"isSuccess":`...)
	b = strconv.AppendBool(b, v.report.Verdict == vouch.Allowed)
	b = append(b, `,"traceID":`...)
	b = appendString(b, v.traceID)
	b = append(b, `,"timestamp":`...)
	b = appendString(b, v.timestamp)
	b = append(b, `,"subject":`...)
	b = appendString(b, v.report.Subject)
	b = append(b, `,"reference":`...)
	b = appendString(b, v.report.Reference)
	b = append(b, ',')
	return append(b, v.verdict[1:]...) // verdict is an object: drop its '{'
}

// appendString appends s as a JSON string, as encoding/json writes it
// (HTML characters escaped).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain says which bytes encoding/json writes in a string as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendResponse appends a successful ProviderResponse, encoded as
// json.Encoder does (with a trailing newline); verify values are spliced
// from their encoded parts instead of encoded by reflection.
func appendResponse(b []byte, apiVersion string, answers []answer) []byte {
	b = append(b, `{"apiVersion":`...)
	b = appendString(b, apiVersion)
	b = append(b, `,"kind":"`+KindResponse+`","response":{"idempotent":true,"items":[`...)
	for i, a := range answers {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = appendString(b, a.Key)
		switch {
		case a.value.report != nil:
			b = append(b, `,"value":`...)
			b = appendValue(b, &a.value)
		case a.Value != nil:
			data, err := json.Marshal(a.Value)
			if err != nil {
				a.Error = "vouch could not encode its answer: " + err.Error()
				break
			}
			b = append(b, `,"value":`...)
			b = append(b, data...)
		}
		if a.Error != "" {
			b = append(b, `,"error":`...)
			b = appendString(b, a.Error)
		}
		b = append(b, '}')
	}
	return append(b, "]}}\n"...)
}

// Bounds of the memo of encoded verdicts: entries (two per cached verdict
// at most, with and without the graph) and their bytes.
const (
	maxEncodings     = 8192
	maxEncodingBytes = 32 << 20
)

// encodings keeps the encoded verdict fields of cached verdicts, by the
// verdict's id (CachingDecider) and whether the graph is in: a verdict
// answered from the cache is encoded once, not for every request (three
// quarters of the server's CPU on cached requests, once the report itself
// is not decoded again). When full, it starts afresh.
type encodings struct {
	mu    sync.Mutex
	m     map[encodingKey][]byte
	bytes int
}

// encodingKey names one encoding of one cached verdict.
type encodingKey struct {
	id    uint64
	graph bool
}

// verdict returns the encoded verdict fields of r, which is the cached
// verdict id (0: not cached, encoded every time).
func (e *encodings) verdict(r *vouch.Report, id uint64, graph bool) ([]byte, error) {
	if id == 0 {
		return encodeVerdict(r, graph)
	}
	k := encodingKey{id, graph}
	e.mu.Lock()
	b, ok := e.m[k]
	e.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := encodeVerdict(r, graph)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil || len(e.m) >= maxEncodings || e.bytes+len(b) > maxEncodingBytes {
		e.m, e.bytes = make(map[encodingKey][]byte), 0
	}
	if _, ok := e.m[k]; !ok {
		e.m[k] = b
		e.bytes += len(b)
	}
	return b, nil
}
