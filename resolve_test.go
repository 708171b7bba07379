package vouch_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/store/ocilayout"
)

// TestExecutorResolve: a tag resolves to its manifest's descriptor, and
// that digest to the same; a missing tag is ErrNotFound.
func TestExecutorResolve(t *testing.T) {
	ctx := context.Background()
	exec := &vouch.Executor{Store: ocilayout.New(vouch.Limits{})}
	byTag, err := exec.Resolve(ctx, mustRef(t, "oci-layout:examples/layout:demo"))
	if err != nil || byTag.Digest == "" || byTag.MediaType == "" {
		t.Fatalf("by tag: %+v, %v", byTag, err)
	}
	byDigest, err := exec.Resolve(ctx, mustRef(t, "oci-layout:examples/layout@"+byTag.Digest.String()))
	if err != nil || byDigest.Digest != byTag.Digest {
		t.Fatalf("by digest: %+v, %v", byDigest, err)
	}
	if _, err := exec.Resolve(ctx, mustRef(t, "oci-layout:examples/layout:missing")); !errors.Is(err, vouch.ErrNotFound) {
		t.Fatalf("missing tag: %v", err)
	}
	if _, err := (&vouch.Executor{}).Resolve(ctx, mustRef(t, "oci-layout:examples/layout:demo")); err == nil {
		t.Fatal("resolved without a store")
	}
}
