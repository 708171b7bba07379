package vouch_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

// TestLeafTypesSaveRequests: the referrers of a signature are not looked up
// by default, so each signature costs its manifest and nothing more.
func TestLeafTypesSaveRequests(t *testing.T) {
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "leaf/app")
			img := p.Image("v1", "leaf")
			for i := 0; i < 3; i++ {
				p.Attach(img, "application/vnd.cncf.notary.signature", "application/jose+json", []byte{byte('a' + i)})
			}
			count := func(leaves []string) int64 {
				var n atomic.Int64
				st, err := registry.New(registry.Options{PlainHTTP: true, OnResponse: func(string, string, int) { n.Add(1) }})
				if err != nil {
					t.Fatal(err)
				}
				e := &vouch.Executor{Store: st, Discovery: vouch.Discovery{LeafTypes: leaves}}
				root, _, err := e.Graph(context.Background(), mustRef(t, reg.Host+"/leaf/app:v1"))
				if err != nil {
					t.Fatal(err)
				}
				if len(root.Referrers) != 3 {
					t.Fatalf("%d referrers, want 3", len(root.Referrers))
				}
				return n.Load()
			}
			withLeaves, without := count(nil), count([]string{})
			if without-withLeaves != 3 {
				t.Fatalf("requests: %d with leaf types, %d without; want 3 saved (one per signature)", withLeaves, without)
			}
			t.Logf("requests for an image with 3 signatures: %d (leaf types on), %d (off)", withLeaves, without)
		})
	}
}
