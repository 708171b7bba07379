package testbed_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch/internal/testbed"
)

// TestPollSeesExit shows that Poll stops waiting when the process exits,
// with the end of its output.
func TestPollSeesExit(t *testing.T) {
	p := testbed.Launch(t, testbed.ProcessOptions{Path: "/bin/sh", Args: []string{"-c", "echo about to fail; exit 3"}})
	err := testbed.Poll(10*time.Second, 10*time.Millisecond, p, func() error { return errors.New("never ready") })
	if err == nil || !strings.Contains(err.Error(), "about to fail") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Poll: %v", err)
	}
}

// TestPushAndSign pushes an image with an SBOM, signs it, and finds both
// through the referrers API of both registries.
func TestPushAndSign(t *testing.T) {
	signer := testbed.NewNotationSigner(t)
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "testbed/app")
			img := p.Image("v1", "seed")
			p.Attach(img, "application/spdx+json", "application/spdx+json", []byte(`{}`))
			signer.Sign(p, img)
			var types []string
			err := p.Repo.Referrers(context.Background(), img, "", func(refs []ocispec.Descriptor) error {
				for _, r := range refs {
					types = append(types, r.ArtifactType)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(types) != 2 {
				t.Fatalf("referrers: %v, want an SBOM and a signature", types)
			}
		})
	}
}

// TestRedis starts, flushes, stops and restarts redis-server.
func TestRedis(t *testing.T) {
	r, err := testbed.StartRedis(testbed.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := r.Flush(); err == nil {
		t.Fatal("a stopped server answered")
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
}
