package main

import (
	"os"
	"runtime/metrics"
	"testing"
)

// gcCyclesAtInit counts the collections that ran while the packages linked
// into this binary initialised: main's variables are initialised after
// every package it imports.
var gcCyclesAtInit = gcCycles()

func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestNoCollectionDuringInit checks that gcpause's init runs before the
// dependencies that allocate at init, so that a short command pays for no
// collection of their garbage (bench B1).
func TestNoCollectionDuringInit(t *testing.T) {
	if gcCyclesAtInit != 0 {
		t.Fatalf("%d garbage collections ran during package initialisation; want none: gcpause's init must run before the packages that allocate (GODEBUG=inittrace=1 shows the order)", gcCyclesAtInit)
	}
}

// TestServeResumesCollection checks that `vouch serve`, which lives long,
// collects garbage as GOGC says from the start, without waiting for its
// heap to near gcpause.Limit. Run alone, the pause is still in force when
// it starts.
func TestServeResumesCollection(t *testing.T) {
	if os.Getenv("GOGC") == "off" {
		t.Skip("GOGC=off")
	}
	if code, out, stderr := vouchRun(t, "serve", "--generate-tls", t.TempDir()); code != 0 {
		t.Fatalf("serve --generate-tls: exit %d\n%s%s", code, out, stderr)
	}
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if gogc := int64(s[0].Value.Uint64()); gogc < 0 {
		t.Fatal("the garbage collector is still off after serve started")
	}
}
