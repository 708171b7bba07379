package ha

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-project/vouch/cache/redistest"
	"github.com/vouch-project/vouch/internal/testbed"
)

// The load and its bounds. The budget is Gatekeeper's default webhook
// timeout; the margin allows for a machine shared with other tests.
const (
	budget      = 3 * time.Second
	margin      = time.Second
	images      = 8                     // signed images, and as many unsigned
	workers     = 4                     // concurrent clients
	pause       = 60 * time.Millisecond // between one client's requests
	warmUp      = 3 * time.Second       // of load before the kill
	afterwards  = 2 * time.Second       // of load once every replica uses Redis again
	maxFailover = 30 * time.Second      // for the Sentinels, then the replicas
	cacheTTL    = "2s"                  // short, so that the replicas keep reading and writing Redis
	tagTTL      = "1s"
	hitSeries   = `vouch_redis_lookups_total{result="hit"}`

	// sentinelPassword is the Sentinels' requirepass, given to the
	// replicas in $VOUCH_REDIS_SENTINEL_PASSWORD; it must never be logged.
	sentinelPassword = "ha-sentinel-password-7c21"
)

// TestFailover runs three `vouch serve` replicas sharing a Redis master
// behind three Sentinels, all real processes, and a distribution registry
// holding notation-signed and unsigned images. Clients ask the replicas in
// turn, as Gatekeeper would, about a signed and an unsigned image per
// request; the verdicts are cached briefly (--cache-ttl 2s), so that the
// replicas keep reading and writing Redis throughout. Three seconds in, the
// Redis master is killed (SIGKILL). The test asserts that no answer is
// wrong (signed allowed, unsigned denied, every time), that none is an
// error or a timeout or slower than the budget, that every replica saw the
// outage and came back to Redis, and that after the failover a verdict
// written by one replica is read from the new master by another, which
// does not verify the image again.
func TestFailover(t *testing.T) {
	began := time.Now()
	reg := testbed.Distribution(t)
	signer := testbed.NewNotationSigner(t)
	push := testbed.NewPusher(t, reg.Host, "ha/app")
	var signed, unsigned []string
	for i := range images {
		tag := fmt.Sprintf("signed-%d", i)
		signer.Sign(push, push.Image(tag, tag))
		signed = append(signed, reg.Host+"/ha/app:"+tag)
		tag = fmt.Sprintf("unsigned-%d", i)
		push.Image(tag, tag)
		unsigned = append(unsigned, reg.Host+"/ha/app:"+tag)
	}
	afterDesc := push.Image("after", "after")
	signer.Sign(push, afterDesc)
	after := reg.Host + "/ha/app:after"

	sentinels := redistest.StartSentinels(t, sentinelPassword)
	bin := testbed.Vouch(t)
	dir := t.TempDir()
	if out, err := exec.Command(bin, "serve", "--generate-tls", dir).CombinedOutput(); err != nil {
		t.Fatalf("vouch serve --generate-tls: %v\n%s", err, out)
	}
	keyFile := filepath.Join(dir, "hmac.key")
	key := make([]byte, 48)
	rand.Read(key)
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	var replicas []*replica
	for i := range 3 {
		replicas = append(replicas, startReplica(t, bin, dir, fmt.Sprintf("vouch-%d", i),
			"--notation-cert", signer.CAFile, "--plain-http", "--budget", budget.String(),
			"--cache-ttl", cacheTTL, "--deny-cache-ttl", cacheTTL, "--tag-ttl", tagTTL, "--tag-max-stale", "0",
			"--redis-sentinel-addrs", strings.Join(sentinels.Addrs, ","), "--redis-sentinel-master", sentinels.MasterName,
			"--redis-hmac-key-file", keyFile))
	}
	client := httpsClient(t, filepath.Join(dir, "ca.crt"))
	t.Logf("set up in %v: registry %s, sentinels %v (master %s), replicas %s %s %s",
		time.Since(began).Round(time.Millisecond), reg.Host, sentinels.Addrs, sentinels.Master(),
		replicas[0].addr, replicas[1].addr, replicas[2].addr)

	// The load: each client asks the next replica about the next signed
	// and unsigned image, until stopped.
	var (
		stop       atomic.Bool
		seq        atomic.Int64
		wg         sync.WaitGroup
		mu         sync.Mutex
		results    []result
		killedAt   time.Time // set before the kill, read after the load stops
		killedFlag atomic.Bool
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				n := seq.Add(1)
				r := replicas[n%int64(len(replicas))]
				res := ask(client, r, probe{signed[n%images], true}, probe{unsigned[(n/3)%images], false})
				res.afterKill = killedFlag.Load()
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				time.Sleep(pause)
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()

	loadStart := time.Now()
	time.Sleep(warmUp)
	killedAt = time.Now()
	killedFlag.Store(true)
	oldMaster := sentinels.KillMaster()
	newMaster, err := sentinels.WaitFailover(oldMaster, maxFailover)
	if err != nil {
		t.Fatal(err)
	}
	switched := time.Since(killedAt)
	// The replicas come back to Redis on their own: the load drives them.
	deadline := time.Now().Add(maxFailover)
	for {
		back := 0
		for _, r := range replicas {
			if r.metric(t, "vouch_redis_available") == 1 && r.metric(t, "vouch_redis_outages_total") >= 1 {
				back++
			}
		}
		if back == len(replicas) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d replicas use Redis again %v after the kill", back, len(replicas), maxFailover)
		}
		time.Sleep(50 * time.Millisecond)
	}
	recovered := time.Since(killedAt)
	time.Sleep(afterwards)
	stop.Store(true)
	wg.Wait()
	loadTime := time.Since(loadStart)

	// The figures.
	var total, during, wrong, failed, slow int
	var longest time.Duration
	for _, res := range results {
		total++
		if res.afterKill && res.start.Sub(killedAt) < recovered {
			during++
		}
		longest = max(longest, res.took)
		switch {
		case res.problem != "":
			failed++
			if failed <= 5 {
				t.Errorf("%s at +%v: %s", res.replica, res.start.Sub(killedAt).Round(time.Millisecond), res.problem)
			}
		case res.wrong != "":
			wrong++
			if wrong <= 5 {
				t.Errorf("%s at +%v: WRONG: %s", res.replica, res.start.Sub(killedAt).Round(time.Millisecond), res.wrong)
			}
		}
		if res.took > budget+margin {
			slow++
		}
	}
	t.Logf("load: %d requests (2 images each) from %d clients in %v (%.0f a second); %d of them between the kill and every replica using Redis again",
		total, workers, loadTime.Round(time.Millisecond), float64(total)/loadTime.Seconds(), during)
	t.Logf("failover: the sentinels named %s master %v after %s was killed; every replica used Redis again %v after the kill",
		newMaster, switched.Round(time.Millisecond), oldMaster, recovered.Round(time.Millisecond))
	t.Logf("answers: %d wrong, %d errors or timeouts, %d over the budget %v + %v; slowest request %v",
		wrong, failed, slow, budget, margin, longest.Round(time.Millisecond))
	for _, r := range replicas {
		t.Logf("%s: vouch_redis_outages_total %v, vouch_redis_errors_total get %v set %v, Redis hits %v",
			r.name, r.metric(t, "vouch_redis_outages_total"), r.metric(t, `vouch_redis_errors_total{op="get"}`),
			r.metric(t, `vouch_redis_errors_total{op="set"}`), r.metric(t, hitSeries))
	}
	if total < 50 || during == 0 {
		t.Fatalf("too little load to judge: %d requests, %d during the failover", total, during)
	}
	if wrong+failed+slow > 0 {
		t.Fatalf("%d wrong answers, %d errors or timeouts, %d over the budget", wrong, failed, slow)
	}
	for _, r := range replicas {
		if r.metric(t, `vouch_redis_errors_total{op="get"}`)+r.metric(t, `vouch_redis_errors_total{op="set"}`) == 0 {
			t.Fatalf("%s counted no Redis error: the load did not reach Redis during the failover", r.name)
		}
	}

	// After the failover: replica 0 verifies an image no one asked about
	// and writes the verdict to the new master; replica 1 reads it from
	// there as a Redis hit, without verifying.
	hitsBefore := replicas[1].metric(t, hitSeries)
	verifiedBefore := replicas[1].verifications(t)
	if res := ask(client, replicas[0], probe{after, true}); res.problem != "" || res.wrong != "" {
		t.Fatalf("replica 0 on %s: %s%s", after, res.problem, res.wrong)
	}
	raw := redis.NewClient(&redis.Options{Addr: newMaster, Protocol: 2, DisableIdentity: true})
	defer raw.Close()
	keys, err := raw.Keys(context.Background(), "vouch:verdict:*@"+afterDesc.Digest.String()).Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("the new master %s holds verdict keys %v (%v) for %s, want one", newMaster, keys, err, after)
	}
	if res := ask(client, replicas[1], probe{after, true}); res.problem != "" || res.wrong != "" {
		t.Fatalf("replica 1 on %s: %s%s", after, res.problem, res.wrong)
	}
	if hits := replicas[1].metric(t, hitSeries); hits <= hitsBefore {
		t.Fatalf("replica 1 read no Redis hit (%v, before %v): it did not use the new master", hits, hitsBefore)
	}
	if v := replicas[1].verifications(t); v != verifiedBefore {
		t.Fatalf("replica 1 ran %v verifications for a verdict that was in Redis", v-verifiedBefore)
	}
	for _, r := range replicas {
		if out := r.proc.Output(64 << 10); strings.Contains(out, sentinelPassword) {
			t.Fatalf("%s logged the Sentinels' password:\n%s", r.name, out)
		}
	}
	t.Logf("after the failover, replica 1 read replica 0's verdict on %s from the new master; the test took %v", after, time.Since(began).Round(time.Millisecond))
}

// result is one request of the load.
type result struct {
	replica   string
	start     time.Time
	took      time.Duration
	afterKill bool
	problem   string // an HTTP failure, a systemError, a per-key error (timeout included)
	wrong     string // a verdict other than the image's
}

// probe is an image to ask about and whether it must be allowed.
type probe struct {
	ref     string
	allowed bool
}

// ask asks replica r, as Gatekeeper does, about the images, and checks the
// answer.
func ask(client *http.Client, r *replica, probes ...probe) (res result) {
	res = result{replica: r.name, start: time.Now()}
	defer func() { res.took = time.Since(res.start) }()
	want := map[string]bool{}
	var keys []string
	for _, p := range probes {
		want[p.ref] = p.allowed
		keys = append(keys, p.ref)
	}
	body, _ := json.Marshal(map[string]any{
		"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
		"request": map[string]any{"keys": keys},
	})
	resp, err := client.Post("https://"+r.addr+"/gatekeeper/v1/verify", "application/json", bytes.NewReader(body))
	if err != nil {
		res.problem = err.Error()
		return res
	}
	defer resp.Body.Close()
	var pr struct {
		Response struct {
			SystemError string `json:"systemError"`
			Items       []struct {
				Key   string `json:"key"`
				Error string `json:"error"`
				Value struct {
					IsSuccess bool   `json:"isSuccess"`
					Verdict   string `json:"verdict"`
				} `json:"value"`
			} `json:"items"`
		} `json:"response"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&pr); err != nil {
		res.problem = fmt.Sprintf("HTTP %d, undecodable answer: %v", resp.StatusCode, err)
		return res
	}
	if resp.StatusCode != http.StatusOK || pr.Response.SystemError != "" || len(pr.Response.Items) != len(probes) {
		res.problem = fmt.Sprintf("HTTP %d, systemError %q, %d items", resp.StatusCode, pr.Response.SystemError, len(pr.Response.Items))
		return res
	}
	for _, it := range pr.Response.Items {
		allowed, ok := want[it.Key]
		switch {
		case !ok:
			res.problem = fmt.Sprintf("an item for %q, which was not asked", it.Key)
		case it.Error != "":
			res.problem = fmt.Sprintf("%s: %s", it.Key, it.Error)
		case it.Value.IsSuccess != allowed || (allowed && it.Value.Verdict != "allowed") || (!allowed && it.Value.Verdict != "denied"):
			res.wrong = fmt.Sprintf("%s: isSuccess %v, verdict %q", it.Key, it.Value.IsSuccess, it.Value.Verdict)
		}
		delete(want, it.Key)
	}
	return res
}

// replica is a `vouch serve` process.
type replica struct {
	name, addr, metricsAddr string
	proc                    *testbed.Process
}

// startReplica runs vouch serve with the certificates that --generate-tls
// wrote into dir and the extra flags, and waits until it is ready.
func startReplica(t *testing.T, bin, dir, name string, extra ...string) *replica {
	t.Helper()
	r := &replica{name: name, addr: testbed.FreeAddr(t), metricsAddr: testbed.FreeAddr(t)}
	args := append([]string{"serve", "--listen", r.addr, "--metrics-listen", r.metricsAddr,
		"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key"),
		// The testbed's registry is on 127.0.0.1, which vouch serve refuses
		// unless the configuration names it.
		"--allow-internal-registry", "127.0.0.1"}, extra...)
	r.proc = testbed.Launch(t, testbed.ProcessOptions{Name: name, Path: bin, Args: args, StopSignal: syscall.SIGTERM,
		Env: []string{"VOUCH_REDIS_SENTINEL_PASSWORD=" + sentinelPassword}})
	plain := &http.Client{Timeout: 2 * time.Second}
	testbed.WaitFor(t, name+" ready", 30*time.Second, r.proc, func() error { return testbed.HTTPReady(plain, "http://"+r.metricsAddr+"/readyz") })
	return r
}

var metricsClient = &http.Client{Timeout: 5 * time.Second}

// metric returns the value of one Prometheus series of the replica (0
// when absent).
func (r *replica) metric(t *testing.T, series string) float64 {
	t.Helper()
	return r.sum(t, `(?m)^`+regexp.QuoteMeta(series)+` (\S+)$`)
}

// verifications returns how many verifications the replica ran.
func (r *replica) verifications(t *testing.T) float64 {
	t.Helper()
	return r.sum(t, `(?m)^vouch_verification_duration_seconds_count\{[^}]*\} (\S+)$`)
}

// sum adds the values of the series that pattern matches.
func (r *replica) sum(t *testing.T, pattern string) float64 {
	t.Helper()
	resp, err := metricsClient.Get("http://" + r.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, m := range regexp.MustCompile(pattern).FindAllSubmatch(body, -1) {
		f, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		total += f
	}
	return total
}

// httpsClient trusts the CA in caFile, and keeps connections open as
// Gatekeeper does.
func httpsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", caFile)
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, MaxIdleConnsPerHost: workers},
	}
}
