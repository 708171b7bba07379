package gatekeeper

import "github.com/vouch-project/vouch"

// Value is the reference model of a verify value for the tests: what
// json.Marshal gives for it is what the Provider must answer (appendValue
// splices the same bytes from the encoded verdict fields).
type Value struct {
	IsSuccess bool   `json:"isSuccess"`
	TraceID   string `json:"traceID"`
	Timestamp string `json:"timestamp"`
	Subject   string `json:"subject"`
	Reference string `json:"reference"`
	verdictFields
}

// NewValue returns the Value answering report at timestamp for the request
// traceID, with the graph when graph is true.
func NewValue(report *vouch.Report, traceID, timestamp string, graph bool) Value {
	return Value{
		IsSuccess:     report.Verdict == vouch.Allowed,
		TraceID:       traceID,
		Timestamp:     timestamp,
		Subject:       report.Subject,
		Reference:     report.Reference,
		verdictFields: newVerdict(report, graph),
	}
}
