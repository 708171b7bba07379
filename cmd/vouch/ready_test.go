package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vouch-project/vouch/cache/redistest"
	"github.com/vouch-project/vouch/internal/testbed"
)

// TestReadyzRedisDown checks that /readyz says whether a configuration
// serves, not whether Redis answers: with the shared cache down (from the
// start, or killed under way) vouch stays ready, answers rightly from its
// local cache and fresh verifications, and says so in
// vouch_redis_available; when Redis comes back, the gauge says that too.
func TestReadyzRedisDown(t *testing.T) {
	bed := newReloadBed(t)
	unsigned := testbed.NewPusher(t, bed.host, "reload/app")
	for _, tag := range []string{"three", "four", "five"} {
		unsigned.Image(tag, tag)
	}
	dir := t.TempDir()
	for name, data := range configFiles("notation", bed.ca1) {
		writeAtomic(t, filepath.Join(dir, name), data)
	}
	keyFile := filepath.Join(dir, "hmac.key")
	if err := os.WriteFile(keyFile, []byte("readyz-test-hmac-key-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := func(redisAddr string) []string {
		return []string{"--config", filepath.Join(dir, "vouch.yaml"), "--redis-addr", redisAddr, "--redis-hmac-key-file", keyFile}
	}
	// waitGauge asks about fresh images until vouch_redis_available is want:
	// the gauge moves on Redis operations, which a local hit does not make.
	waitGauge := func(t *testing.T, s *served, want float64, images ...string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; s.metric(t, "vouch_redis_available") != want; i++ {
			if time.Now().After(deadline) {
				t.Fatalf("vouch_redis_available never became %v\n%s", want, s.logs.String())
			}
			if s.allowed(t, images[i%len(images)]) {
				t.Fatalf("%s allowed", images[i%len(images)])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	t.Run("down from the start", func(t *testing.T) {
		s := startServe(t, args(testbed.FreeAddr(t))...) // nothing listens there
		if !s.allowed(t, bed.image("one")) || s.allowed(t, bed.image("two")) {
			t.Fatal("want one allowed, two denied")
		}
		if code := s.readyz(); code != http.StatusOK {
			t.Fatalf("/readyz %d with Redis down, want 200", code)
		}
		if got := s.metric(t, "vouch_redis_available"); got != 0 {
			t.Fatalf("vouch_redis_available %v with Redis down, want 0", got)
		}
	})

	t.Run("killed and back", func(t *testing.T) {
		rs := redistest.Start(t)
		s := startServe(t, args(rs.Addr)...)
		if !s.allowed(t, bed.image("one")) || s.allowed(t, bed.image("two")) {
			t.Fatal("want one allowed, two denied")
		}
		if got := s.metric(t, "vouch_redis_available"); got != 1 {
			t.Fatalf("vouch_redis_available %v with Redis up, want 1", got)
		}

		rs.Kill()
		waitGauge(t, s, 0, bed.image("three"), bed.image("four"))
		if code := s.readyz(); code != http.StatusOK {
			t.Fatalf("/readyz %d with Redis killed, want 200", code)
		}
		if !s.allowed(t, bed.image("one")) || s.allowed(t, bed.image("two")) {
			t.Fatal("with Redis killed: want one allowed, two denied")
		}

		rs.Restart()
		waitGauge(t, s, 1, bed.image("five"), bed.image("three"))
		if code := s.readyz(); code != http.StatusOK {
			t.Fatalf("/readyz %d with Redis back, want 200", code)
		}
	})
}
