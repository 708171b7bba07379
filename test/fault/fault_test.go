package fault

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
)

// scenario is one fault, switched on for a load run and off after it.
type scenario struct {
	name string
	// on starts the fault; the function it returns stops it.
	on func(b *bed) (off func())
	// lies says the fault is the hostile registry's: it must have
	// changed responses during the run.
	lies bool
}

// toxic is a scenario of one Toxiproxy toxic on a proxy.
func toxic(name, proxy string, x testbed.Toxic) scenario {
	return scenario{name: name, on: func(b *bed) func() {
		x.Name = "fault"
		b.proxy.AddToxic(proxy, x)
		return func() { b.proxy.RemoveToxic(proxy, "fault") }
	}}
}

// mode is a scenario of the hostile registry.
func mode(m string) scenario {
	return scenario{name: m, lies: true, on: func(b *bed) func() {
		b.hostile.set(m)
		return func() { b.hostile.set("") }
	}}
}

// every runs f every interval until the returned stop is called (and
// returns once f has stopped).
func every(interval time.Duration, f func(i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
				f(i)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func scenarios() []scenario {
	return []scenario{
		{name: "no fault", on: func(*bed) func() { return func() {} }},
		mode(throttleRetryAfter),
		mode(throttle),
		mode(errorBurst),
		toxic("latency spikes (1.5 s ± 0.5 s per read)", registryProxy, testbed.Toxic{Type: "latency", Attributes: map[string]int{"latency": 1500, "jitter": 500}}),
		mode(trickle),
		toxic("connection resets (half the connections)", registryProxy, testbed.Toxic{Type: "reset_peer", Toxicity: 0.5, Attributes: map[string]int{"timeout": 0}}),
		toxic("registry accepts and never answers", registryProxy, testbed.Toxic{Type: "timeout", Attributes: map[string]int{"timeout": 0}}),
		mode(wrongDigest),
		mode(foreignReferrers),
		mode(endlessPages),
		mode(redirectLoop),
		mode(oversized),
		mode(nested),
		{name: "Redis down", on: func(b *bed) func() {
			b.proxy.SetEnabled(redisProxy, false)
			return func() { b.proxy.SetEnabled(redisProxy, true) }
		}},
		toxic("Redis slow (1 s per read)", redisProxy, testbed.Toxic{Type: "latency", Attributes: map[string]int{"latency": 1000}}),
		{name: "Redis flapping (every 250 ms)", on: func(b *bed) func() {
			stop := every(250*time.Millisecond, func(i int) { b.proxy.SetEnabled(redisProxy, i%2 == 1) })
			return func() { stop(); b.proxy.SetEnabled(redisProxy, true) }
		}},
		{name: "certificate rotated every 300 ms", on: func(b *bed) func() {
			return every(300*time.Millisecond, func(int) { b.rotateCert() })
		}},
		{name: "configuration reloaded every 200 ms", on: func(b *bed) func() {
			stop := every(200*time.Millisecond, func(i int) { b.writeConfig(fmt.Sprintf("notation-%d", i%2)) })
			return func() { stop(); b.writeConfig("notation") }
		}},
	}
}

// result is one scenario's figures.
type result struct {
	name string
	y    *tally
}

// run runs every scenario for d with workers clients, checks what must
// hold after each, and returns the figures.
func run(t testing.TB, b *bed, d time.Duration, workers int) []result {
	t.Helper()
	var goroutines float64
	var results []result
	for i, s := range scenarios() {
		b.fresh()
		b.hostile.lies.Store(0)
		off := s.on(b)
		y := b.load(d, workers)
		off()
		results = append(results, result{s.name, y})
		if s.lies && b.hostile.lies.Load() == 0 {
			t.Errorf("%s: the hostile registry never lied: the scenario tested nothing", s.name)
		}
		if y.wrongAllow > 0 || y.pastBudget > 0 || y.count("signed "+unanswered)+y.count("unsigned "+unanswered) > 0 {
			t.Errorf("%s: %d wrong allows, %d answers past the budget (slowest %v), %d unanswered: %s",
				s.name, y.wrongAllow, y.pastBudget, y.maxLatency.Round(time.Millisecond),
				y.count("signed "+unanswered)+y.count("unsigned "+unanswered), strings.Join(y.samples, "; "))
		}
		if err := b.vouch.Exited(); err != nil {
			t.Fatalf("%s: vouch serve exited: %v\n%s", s.name, err, b.vouch.Output(8192))
		}
		// Between scenarios, faults off: vouch must be right again.
		b.settle(t, s.name)
		if i == 0 {
			// The baseline: connections to the registry and Redis open.
			goroutines = b.metric("go_goroutines")
		}
	}
	if out := b.vouch.Output(64 << 10); strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("vouch serve's output shows a panic:\n%s", out)
	}
	// Every goroutine a fault left waiting must end: fetches cancelled,
	// Redis calls bounded, single-flight entries released.
	deadline := time.Now().Add(30 * time.Second)
	after := b.metric("go_goroutines")
	for after > goroutines+10 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		after = b.metric("go_goroutines")
	}
	if after > goroutines+10 {
		t.Errorf("goroutines %v after the faults, %v before: leaked", after, goroutines)
	}
	now, peak := b.rss()
	t.Logf("goroutines %v before, %v after; resident set %d MiB now, %d MiB at its peak", goroutines, after, now>>20, peak>>20)
	if peak > 256<<20 {
		t.Errorf("vouch's resident set peaked at %d MiB, over 256 MiB", peak>>20)
	}
	return results
}

// settle waits until vouch answers rightly again once a fault is off.
func (b *bed) settle(t testing.TB, after string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, _ := b.gatekeeper(b.signed[0])
		u, _ := b.gatekeeper(b.unsigned[0])
		if s == allowed && u == denied {
			return
		}
		if u == allowed {
			t.Errorf("after %s: the unsigned image was allowed", after)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, vouch did not recover in 30 s: signed %s, unsigned %s\n%s", after, s, u, b.vouch.Output(8192))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// table prints the figures as docs/reliability.md shows them.
func table(results []result) string {
	var sb strings.Builder
	sb.WriteString("| fault | requests | signed allowed | signed denied | signed undecided | unsigned denied | unsigned undecided | wrong allows | past budget | slowest |\n")
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		y := r.y
		fmt.Fprintf(&sb, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %v |\n", r.name, y.requests,
			y.count("signed "+allowed), y.count("signed "+denied), y.count("signed "+undecided),
			y.count("unsigned "+denied), y.count("unsigned "+undecided), y.wrongAllow, y.pastBudget, y.maxLatency.Round(time.Millisecond))
	}
	return sb.String()
}

// TestFaults runs every scenario for 3 s (VOUCH_FAULT_SECONDS) with 8
// clients.
func TestFaults(t *testing.T) {
	d := 3 * time.Second
	if s := os.Getenv("VOUCH_FAULT_SECONDS"); s != "" {
		n, err := time.ParseDuration(s + "s")
		if err != nil {
			t.Fatalf("VOUCH_FAULT_SECONDS: %v", err)
		}
		d = n
	}
	b := newBed(t)
	results := run(t, b, d, 8)
	t.Logf("%s per fault, 8 clients:\n%s", d, table(results))
	// Each fault reached vouch: no scenario may have been answered from
	// caches alone (then it would have tested nothing).
	for _, r := range results {
		if r.y.requests == 0 {
			t.Errorf("%s: no request answered", r.name)
		}
	}
}

// BenchmarkSoak runs every scenario for 30 s (VOUCH_SOAK_SECONDS) with 16
// clients and prints the table of docs/reliability.md:
//
//	go test -run '^$' -bench Soak -benchtime 1x ./test/fault
func BenchmarkSoak(b *testing.B) {
	d := 30 * time.Second
	if s := os.Getenv("VOUCH_SOAK_SECONDS"); s != "" {
		n, err := time.ParseDuration(s + "s")
		if err != nil {
			b.Fatalf("VOUCH_SOAK_SECONDS: %v", err)
		}
		d = n
	}
	bed := newBed(b)
	for b.Loop() {
		results := run(b, bed, d, 16)
		fmt.Printf("%s per fault, 16 clients:\n%s", d, table(results))
	}
}
