package gcpause

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// gcSettings reads GOGC (-1: off) and GOMEMLIMIT as the runtime has them
// now.
func gcSettings() (gogc int64, memLimit int64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()), int64(s[1].Value.Uint64())
}

func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// The tests run in file order: the pause is in force when the first one
// starts, and ends during the second.

func TestPausedFromInit(t *testing.T) {
	if percent < 0 {
		t.Skip("GOGC=off")
	}
	if n := gcCycles(); n != 0 {
		t.Errorf("%d collections ran before the tests; want none", n)
	}
	gogc, memLimit := gcSettings()
	if gogc != -1 {
		t.Errorf("GOGC is %d during the pause, want off", gogc)
	}
	if want := min(limit, Limit); memLimit != want {
		t.Errorf("memory limit is %d during the pause, want %d", memLimit, want)
	}
}

var sink []byte

func TestPauseEndsAtLimit(t *testing.T) {
	if percent < 0 {
		t.Skip("GOGC=off")
	}
	// Allocate garbage past the limit: the memory limit starts a
	// collection, whose cleanup restores the environment's settings.
	for range 2 * Limit / (1 << 20) {
		sink = make([]byte, 1<<20)
	}
	sink = nil
	if gcCycles() == 0 {
		t.Fatalf("no collection after allocating %d MiB", 2*Limit>>20)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		gogc, memLimit := gcSettings()
		if gogc == int64(percent) && memLimit == limit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a collection GOGC=%d GOMEMLIMIT=%d, want %d and %d", gogc, memLimit, percent, limit)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	// Resume after the pause has ended changes nothing.
	Resume()
	if gogc, memLimit := gcSettings(); gogc != int64(percent) || memLimit != limit {
		t.Fatalf("after Resume GOGC=%d GOMEMLIMIT=%d, want %d and %d", gogc, memLimit, percent, limit)
	}
}
