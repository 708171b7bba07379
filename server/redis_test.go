package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/cache/redistest"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/internal/servertest"
)

// redisKey is the HMAC key the replicas of these tests share.
var redisKey = []byte("server-test-hmac-key-0123456789abcdef")

// TestRedisForgedVerdict writes, straight into the Redis the replicas
// share, what an attacker with access to Redis would: an "allowed" verdict
// for an unsigned image, an allowed verdict of a signed image copied onto
// the unsigned one's key, and a tag resolution pointing the unsigned tag at
// the signed digest. A replica without a key (InsecureUnauthenticated)
// admits the unsigned image, which shows the forgeries are well aimed; the
// replicas with the key ignore each forgery, count it in
// vouch_cache_rejected_entries_total, verify at the registry and deny.
func TestRedisForgedVerdict(t *testing.T) {
	logging.Disable() // go-redis logs each failed dial to the standard logger
	ctx := context.Background()
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	signed, unsigned := images(t, sig, reg, "forged/app")
	redisSrv := redistest.Start(t)
	raw := redis.NewClient(&redis.Options{Addr: redisSrv.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { raw.Close() })

	type replica struct {
		stack    *servertest.Stack
		requests *servertest.Counter
	}
	start := func(insecure bool) replica {
		m := server.NewMetrics()
		opts := cache.RedisOptions{
			Addr: redisSrv.Addr, OnError: m.RedisError, OnRejected: m.CacheRejected,
			Logger: slog.New(slog.DiscardHandler), HMACKey: redisKey,
		}
		if insecure {
			opts.HMACKey, opts.InsecureUnauthenticated = nil, true
		}
		rc, err := cache.NewRedis(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rc.Close() })
		var c servertest.Counter
		return replica{servertest.Start(t, servertest.Options{Executor: sig.Executor(t, c.Observe), Cache: rc, Metrics: m}), &c}
	}
	repo := reg.Host + "/forged/app"
	// Keys as server/engine writes them, under the servertest policy hash.
	verdictKey := func(d fmt.Stringer) string { return "vouch:verdict:test-policy:" + repo + "@" + d.String() }
	tagKey := "vouch:tag:" + repo + ":unsigned"
	forge := func(key string, value []byte) {
		t.Helper()
		if err := raw.Set(ctx, key, value, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// ask verifies image on r and returns whether it was allowed, and how
	// many registry requests that took.
	ask := func(r replica, image string) (bool, int) {
		t.Helper()
		before := r.requests.Count(reg.Host)
		_, resp := verify(t, r.stack, "/gatekeeper/v1/verify", image)
		it := resp.Response.Items[0]
		if it.Error != "" {
			t.Fatalf("%s: %s", image, it.Error)
		}
		return valueOf(t, it).IsSuccess, r.requests.Count(reg.Host) - before
	}
	wantRejected := func(r replica, reason string, n int) {
		t.Helper()
		m := metricsText(t, r.stack)
		if want := fmt.Sprintf(`vouch_cache_rejected_entries_total{reason=%q} %d`, reason, n); !strings.Contains(m, want) {
			t.Fatalf("want %s, got:\n%s", want, grep(m, "rejected"))
		}
	}
	byDigest := repo + "@" + unsigned.Digest.String()

	forged, err := json.Marshal(vouch.Report{
		Subject: byDigest, Reference: byDigest, Verdict: vouch.Allowed,
		Reason: "the policy's requirements are met",
	})
	if err != nil {
		t.Fatal(err)
	}
	forge(verdictKey(unsigned.Digest), forged)

	t.Run("without a key the forgery works", func(t *testing.T) {
		if ok, n := ask(start(true), byDigest); !ok || n != 0 {
			t.Fatalf("allowed %v after %d registry requests: the forged entry was not where a replica looks", ok, n)
		}
	})

	t.Run("forged verdict", func(t *testing.T) {
		b := start(false)
		if ok, n := ask(b, byDigest); ok || n == 0 {
			t.Fatalf("allowed %v after %d registry requests; want denied after verifying", ok, n)
		}
		wantRejected(b, cache.RejectUnsigned, 1)
		// The denial b cached replaces the forgery, and is read back.
		if ok, n := ask(start(false), byDigest); ok || n != 0 {
			t.Fatalf("allowed %v after %d registry requests; want b's denial from Redis", ok, n)
		}
	})

	t.Run("copied verdict", func(t *testing.T) {
		a := start(false)
		if ok, _ := ask(a, repo+"@"+signed.Digest.String()); !ok {
			t.Fatal("the signed image is denied")
		}
		entry, err := raw.Get(ctx, verdictKey(signed.Digest)).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		forge(verdictKey(unsigned.Digest), entry)
		c := start(false)
		if ok, n := ask(c, byDigest); ok || n == 0 {
			t.Fatalf("allowed %v after %d registry requests; want denied after verifying", ok, n)
		}
		wantRejected(c, cache.RejectMAC, 1)
	})

	t.Run("forged tag", func(t *testing.T) {
		forge(tagKey, fmt.Appendf(nil, "%s %d", signed.Digest, time.Now().UnixMilli()))
		d := start(false)
		if ok, n := ask(d, repo+":unsigned"); ok || n == 0 {
			t.Fatalf("allowed %v after %d registry requests; want denied after resolving the tag", ok, n)
		}
		wantRejected(d, cache.RejectUnsigned, 1)
		forge(tagKey, fmt.Appendf(nil, "%s %d", signed.Digest, time.Now().UnixMilli()))
		if ok, _ := ask(start(true), repo+":unsigned"); !ok {
			t.Fatal("without a key the forged tag was not used: it was not where a replica looks")
		}
	})
}
