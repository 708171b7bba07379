package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server/internal/servertest"
)

// BenchmarkVerifyCached10 measures what Gatekeeper sees at steady state: a
// verify request for ten images (five signed, five not) whose verdicts are
// cached, through the real handler over HTTPS on loopback, 8 clients at
// once on keep-alive connections. It reports requests per second, the
// median and 99th percentile latency, and the size of one answer.
//
//	go test -run XXX -bench VerifyCached10 -benchtime 5s ./server/
func BenchmarkVerifyCached10(b *testing.B) { benchmarkVerifyCached10(b, "/gatekeeper/v1/verify") }

// BenchmarkVerifyCached10Graph is BenchmarkVerifyCached10 with the report
// tree in every value (?graph=true), as vouch answered before values were
// made compact: about three times the bytes.
func BenchmarkVerifyCached10Graph(b *testing.B) {
	benchmarkVerifyCached10(b, "/gatekeeper/v1/verify?graph=true")
}

func benchmarkVerifyCached10(b *testing.B, path string) {
	sig := servertest.NewSigner(b)
	reg := testbed.GGCR(b, nil)
	p := testbed.NewPusher(b, reg.Host, "bench/app")
	var keys []string
	for i := range 10 {
		d := p.Image(fmt.Sprintf("v%d", i), fmt.Sprintf("bench image %d", i))
		if i%2 == 0 {
			sig.Sign(b, reg.Host, "bench/app", d)
		}
		keys = append(keys, fmt.Sprintf("%s/bench/app:v%d", reg.Host, i))
	}
	s := servertest.Start(b, servertest.Options{Executor: sig.Executor(b, nil), MutualTLS: true})
	s.Server.SetReady(true)
	body, err := json.Marshal(providerRequest(keys...))
	if err != nil {
		b.Fatal(err)
	}
	post := func() int64 {
		resp, err := s.Client.Post(s.URL+path, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return n
	}
	size := post() // warm the caches
	// The verdict cache is warm; the tag cache expires every 10s and is
	// refreshed then.
	var mu sync.Mutex
	var latencies []time.Duration
	b.SetParallelism(4) // 4 x GOMAXPROCS clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			post()
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(latencies)
	p99 := latencies[len(latencies)*99/100]
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(size), "answer-B")
}

// BenchmarkVerifyHandlerCached10 measures the verify handler alone, without
// HTTP or TLS (httptest.ResponseRecorder): a request for ten images by
// digest whose verdicts are cached, as B3 sends. Its ns/op and allocs/op are
// the server's own work per request (bench/profile shows the rest).
//
//	go test -run XXX -bench VerifyHandlerCached10 -benchmem ./server/
func BenchmarkVerifyHandlerCached10(b *testing.B) {
	sig := servertest.NewSigner(b)
	reg := testbed.GGCR(b, nil)
	p := testbed.NewPusher(b, reg.Host, "bench/app")
	var keys []string
	for i := range 10 {
		d := p.Image(fmt.Sprintf("v%d", i), fmt.Sprintf("bench image %d", i))
		sig.Sign(b, reg.Host, "bench/app", d)
		keys = append(keys, fmt.Sprintf("%s/bench/app@%s", reg.Host, d.Digest))
	}
	s := servertest.Start(b, servertest.Options{Executor: sig.Executor(b, nil)})
	s.Server.SetReady(true)
	body, err := json.Marshal(providerRequest(keys...))
	if err != nil {
		b.Fatal(err)
	}
	h := s.Server.Handler()
	post := func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/gatekeeper/v1/verify", bytes.NewReader(body)))
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"isSuccess":true`)) {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
	}
	post() // warm the caches
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		post()
	}
}
