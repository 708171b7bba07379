// Package gcpause keeps the garbage collector off while vouch starts.
//
// Go runs the init of every package linked into a binary before main.
// vouch's dependencies allocate about 4.4 MiB there, nearly all of it
// garbage (the JSON Schema library compiles the meta-schemas of five
// drafts; Rekor's models build validators), which crosses the collector's
// initial 4 MiB heap goal. A one-image `vouch verify` allocates about
// 4.8 MiB in all, so without this package it pays for a collection cycle
// or two, 5-15 ms of CPU time in bench B1 on two cores (the mark workers,
// write barriers and the wake-ups between threads), to free memory that the
// process, about to exit, never needs.
//
// cmd/vouch imports this package for its init, which turns the collector
// off under a soft memory limit of [Limit]. Go initialises packages in
// import-path order as soon as their imports are initialised, and this one
// imports only the runtime and sync, so it runs before the dependencies
// that allocate (cmd/vouch's TestNoCollectionDuringInit checks it). The
// pause ends by itself at the first collection, which the memory limit
// starts once the heap nears [Limit]: GOGC and GOMEMLIMIT are then back to
// what the environment set. [Resume] ends it at once, for a long-lived
// process such as `vouch serve`. With GOGC=off the package does nothing.
package gcpause

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Limit is the heap size, in bytes, at which the pause ends by itself;
// GOMEMLIMIT, when lower, takes its place.
const Limit = 32 << 20

var (
	// percent and limit are GOGC and GOMEMLIMIT as the environment set them.
	percent int
	limit   int64
	resume  sync.Once
)

func init() {
	percent = debug.SetGCPercent(-1)
	if percent < 0 {
		// GOGC=off: the collector was off already; nothing to restore.
		resume.Do(func() {})
		return
	}
	limit = debug.SetMemoryLimit(-1) // -1 reads it
	debug.SetMemoryLimit(min(limit, Limit))
	// The first collection finds this object unreachable and runs the
	// cleanup. It is 32 bytes, above the tiny allocator's 16, whose
	// objects may never be cleaned up.
	runtime.AddCleanup(new([32]byte), func(struct{}) { Resume() }, struct{}{})
}

// Resume turns the collector back on as GOGC and GOMEMLIMIT say. It is safe
// to call more than once and from any goroutine.
func Resume() {
	resume.Do(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}
