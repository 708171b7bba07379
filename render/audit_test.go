package render_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/render"
)

func TestAuditText(t *testing.T) {
	r := &audit.Report{Version: audit.ReportVersion, Verdict: vouch.Denied, Verified: 2, Workloads: []*audit.WorkloadReport{
		{Namespace: "team-a", Kind: "Deployment", Name: "web", Pods: 2, Source: "cluster", Verdict: vouch.Allowed, Images: []audit.ImageReport{
			{Container: `container "web"`, Image: "registry.example/app:v1", Digest: "sha256:2a9594f82aed8ad6d99ddbe0e0b041d1d4c06577201c99d775d7bcb785468a62",
				Verdict: vouch.Allowed, Reason: "signature verified", Mode: vouch.ModeEnforce},
		}},
		{Namespace: "team-a", Kind: "Pod", Name: "x\x1b[31m", Source: "m.yaml: document 2", Verdict: vouch.Allowed, Images: []audit.ImageReport{
			{Container: `container "c"`, Image: "registry.example/app:v2", Verdict: vouch.Allowed, Waived: true, Mode: vouch.ModeAudit, Reason: "would deny:\nunsigned"},
		}},
		{Namespace: "team-b", Kind: "CronJob", Name: "nightly", Verdict: vouch.Denied, Images: []audit.ImageReport{
			{Container: `init container "setup"`, Image: "registry.example/setup:1", Verdict: vouch.Undecided, Reason: "could not decide: registry unreachable"},
		}},
		{Namespace: "team-b", Kind: "Deployment", Name: "idle", Verdict: vouch.Allowed},
	}}
	var b bytes.Buffer
	if err := render.AuditText(&b, r, render.TextOptions{ASCII: true}); err != nil {
		t.Fatal(err)
	}
	want := `namespace team-a
  Deployment web  (2 pods)  [cluster]
    [ok] ALLOWED  container "web"  registry.example/app:v1  sha256:2a9594f82aed
      signature verified
  Pod x\u001b[31m  [m.yaml: document 2]
    [ok] ALLOWED  container "c"  registry.example/app:v2  (mode audit)
      would deny: unsigned

namespace team-b
  CronJob nightly
    [??] UNDECIDED  init container "setup"  registry.example/setup:1
      could not decide: registry unreachable
  Deployment idle
    no containers

4 workloads, 3 containers, 2 images verified: 2 allowed, 1 undecided
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := render.AuditJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var back audit.Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Verdict != vouch.Denied || len(back.Workloads) != 4 || !back.Workloads[1].Images[0].Waived {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
	if !strings.Contains(b.String(), `"version": "vouch.audit/v1"`) {
		t.Errorf("JSON without its version:\n%s", b.String())
	}
	if render.AuditText(&b, nil, render.TextOptions{}) == nil || render.AuditJSON(&b, nil) == nil {
		t.Error("no error for a nil report")
	}
}
