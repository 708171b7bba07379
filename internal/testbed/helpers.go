package testbed

import (
	"sync"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
)

// Ref parses s as a subject reference, failing the test if it does not parse.
func Ref(t testing.TB, s string) vouch.Reference {
	t.Helper()
	ref, err := vouch.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// Clock is a settable time source for caches and engines under test. Its
// zero value starts at the zero time; NewClock starts elsewhere.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
