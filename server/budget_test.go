package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9/logging"

	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/cache/redistest"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/admission"
	"github.com/vouch-project/vouch/server/internal/servertest"
)

// slowRepos wraps a registry so that every request for a repository under
// "slow/" takes delay: a fault injected the way an overloaded registry
// behaves (the handler gives up when the client does).
func slowRepos(delay time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v2/slow/") {
				select {
				case <-time.After(delay):
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestBudget: a request whose images cannot be decided in time is answered
// when its budget runs out, with timeout errors for those images (and
// answers for the others), or a denial from the admission webhook.
func TestBudget(t *testing.T) {
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, slowRepos(5*time.Second))
	images(t, sig, reg, "fast/app")
	// Nothing is pushed to slow/: every request there waits 5s first.
	const budget = 600 * time.Millisecond
	s := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil), Budget: budget})
	slow := reg.Host + "/slow/app:v1"
	slowByDigest := reg.Host + "/slow/app@sha256:" + strings.Repeat("a", 64)

	start := time.Now()
	status, resp := verify(t, s, "/gatekeeper/v1/verify", slow, reg.Host+"/fast/app:signed", slowByDigest)
	elapsed := time.Since(start)
	if elapsed > budget+400*time.Millisecond {
		t.Fatalf("answered after %v with a budget of %v", elapsed, budget)
	}
	if elapsed < budget-50*time.Millisecond {
		t.Fatalf("answered after %v, before the budget ran out: the slow registry was not waited for", elapsed)
	}
	items := itemsByKey(t, resp)
	if status != http.StatusOK || len(items) != 3 {
		t.Fatalf("status %d, %+v", status, resp)
	}
	for _, k := range []string{slow, slowByDigest} {
		if it := items[k]; !strings.HasPrefix(it.Error, "timeout: vouch could not decide within the request's time budget") {
			t.Fatalf("%s: %+v, want a timeout error", k, it)
		}
	}
	if v := valueOf(t, items[reg.Host+"/fast/app:signed"]); !v.IsSuccess {
		t.Fatalf("the fast image was not answered: %+v", v)
	}

	start = time.Now()
	adm := review(t, s, "/admission/v1/validate", "default", admission.GroupVersionKind{Version: "v1", Kind: "Pod"},
		map[string]any{"spec": podSpec("", slow, "")})
	elapsed = time.Since(start)
	if elapsed > budget+400*time.Millisecond || adm.Allowed || !strings.Contains(adm.Status.Message, "could not decide in time (fail closed)") {
		t.Fatalf("admission after %v: %+v", elapsed, adm.Status)
	}
	if !strings.Contains(metricsText(t, s), `vouch_answers_total{outcome="timeout"} 3`) {
		t.Fatalf("timeouts not counted:\n%s", metricsText(t, s))
	}
}

func metricsText(t testing.TB, s *servertest.Stack) string {
	t.Helper()
	resp, err := s.Client.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return readAll(t, resp)
}

// TestGracefulShutdown stops the server while a request is being answered:
// the request still gets its answer, and new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, slowRepos(400*time.Millisecond))
	s := servertest.Start(t, servertest.Options{Executor: sig.Executor(t, nil), Budget: 2 * time.Second})
	var wg sync.WaitGroup
	var status int
	var body []byte
	wg.Go(func() {
		status, body = s.Post(t, "/gatekeeper/v1/verify", providerRequest(reg.Host+"/slow/app:v1"))
	})
	time.Sleep(150 * time.Millisecond)
	if err := s.Stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	wg.Wait()
	var resp gkResponse
	if err := json.Unmarshal(body, &resp); err != nil || status != http.StatusOK || len(resp.Response.Items) != 1 {
		t.Fatalf("the request in flight got %d %s", status, body)
	}
	// The slow repository has no such tag: a definite answer, not a cut.
	if it := resp.Response.Items[0]; !strings.Contains(it.Error, "not found") {
		t.Fatalf("item: %+v", it)
	}
	if _, err := s.Client.Get(s.URL + "/healthz"); err == nil {
		t.Fatal("the stopped server still accepts connections")
	}
}

// TestRedisSharedCache runs two servers, as two replicas, on one real
// redis-server: a verdict computed by one is served by the other without a
// single registry request; with Redis killed both keep answering (from
// their local caches, and by verifying what they lack), and count the
// Redis errors.
func TestRedisSharedCache(t *testing.T) {
	logging.Disable() // go-redis logs each failed dial to the standard logger
	sig := servertest.NewSigner(t)
	reg := testbed.GGCR(t, nil)
	images(t, sig, reg, "shared/app")
	redisSrv := redistest.Start(t)

	type replica struct {
		stack    *servertest.Stack
		requests *servertest.Counter
	}
	start := func() replica {
		m := server.NewMetrics()
		rc, err := cache.NewRedis(cache.RedisOptions{
			Addr: redisSrv.Addr, RetryInterval: 50 * time.Millisecond, OnError: m.RedisError,
			Logger: slog.New(slog.DiscardHandler), HMACKey: redisKey, OnRejected: m.CacheRejected,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rc.Close() })
		m.RedisAvailable(rc.Available)
		var c servertest.Counter
		return replica{servertest.Start(t, servertest.Options{Executor: sig.Executor(t, c.Observe), Cache: rc, Metrics: m}), &c}
	}
	a, b := start(), start()
	keys := []string{reg.Host + "/shared/app:signed", reg.Host + "/shared/app:unsigned"}
	check := func(r replica, what string) {
		t.Helper()
		_, resp := verify(t, r.stack, "/gatekeeper/v1/verify", keys...)
		items := itemsByKey(t, resp)
		if !valueOf(t, items[keys[0]]).IsSuccess || valueOf(t, items[keys[1]]).IsSuccess {
			t.Fatalf("%s: wrong verdicts %+v", what, resp)
		}
	}

	check(a, "replica a")
	if a.requests.Count(reg.Host) == 0 {
		t.Fatal("replica a answered without asking the registry")
	}
	check(b, "replica b")
	if n := b.requests.Count(reg.Host); n != 0 {
		t.Fatalf("replica b made %d registry requests for verdicts replica a had cached in Redis", n)
	}

	redisSrv.Kill()
	for _, r := range []replica{a, b} {
		before := r.requests.Count(reg.Host)
		check(r, "with Redis down")
		if r.requests.Count(reg.Host) != before {
			t.Fatal("a replica lost its local cache when Redis went down")
		}
		// A new image: Redis cannot be asked, the registry is.
		p := testbed.NewPusher(t, reg.Host, "shared/app")
		d := p.Image("", "new image "+r.stack.URL)
		_, resp := verify(t, r.stack, "/gatekeeper/v1/verify", reg.Host+"/shared/app@"+d.Digest.String())
		if it := resp.Response.Items[0]; it.Error != "" || valueOf(t, it).IsSuccess {
			t.Fatalf("new unsigned image with Redis down: %+v", it)
		}
		m := metricsText(t, r.stack)
		if !strings.Contains(m, `vouch_redis_errors_total{op="get"}`) || !strings.Contains(m, "vouch_redis_available 0") {
			t.Fatalf("Redis errors not counted:\n%s", grep(m, "redis"))
		}
	}
}

func grep(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
