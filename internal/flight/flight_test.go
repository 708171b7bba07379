package flight_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/flight"
)

type ctxKey struct{}

// TestShared: concurrent callers of one key share one call and its
// result; other keys run calls of their own; once a call is done, the next
// caller starts another.
func TestShared(t *testing.T) {
	var g flight.Group[int]
	var calls atomic.Int64
	release := make(chan struct{})
	fn := func(ctx context.Context) (int, error) {
		n := calls.Add(1)
		<-release
		if ctx.Value(ctxKey{}) != "first" {
			return 0, errors.New("the call lost the first caller's values")
		}
		return int(n), nil
	}
	ctx := context.WithValue(context.Background(), ctxKey{}, "first")
	var wg sync.WaitGroup
	results := make([]int, 10)
	errs := make([]error, 10)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = g.Do(ctx, "a", 0, fn) })
	}
	other := make(chan int, 1)
	go func() { v, _ := g.Do(ctx, "b", 0, fn); other <- v }()
	time.Sleep(100 * time.Millisecond) // every caller waits
	close(release)
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i] != results[0] {
			t.Fatalf("caller %d: %d, %v; caller 0: %d", i, results[i], errs[i], results[0])
		}
	}
	if v := <-other; v == results[0] || calls.Load() != 2 {
		t.Fatalf("%d calls for two keys; b got %d, a %d", calls.Load(), v, results[0])
	}
	if v, err := g.Do(ctx, "a", 0, fn); err != nil || v != 3 {
		t.Fatalf("after the call: %d, %v", v, err)
	}
}

// TestCancelledWithLastCaller: a caller that gives up gets its context's
// error; the call goes on while another caller waits, and is cancelled
// when the last one gives up.
func TestCancelledWithLastCaller(t *testing.T) {
	var g flight.Group[string]
	cancelled := make(chan struct{})
	fn := func(ctx context.Context) (string, error) {
		<-ctx.Done()
		close(cancelled)
		return "", ctx.Err()
	}
	ctx1, cancel1 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel1()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	done2 := make(chan error, 1)
	go func() { _, err := g.Do(ctx2, "k", 0, fn); done2 <- err }()
	time.Sleep(10 * time.Millisecond)
	if _, err := g.Do(ctx1, "k", 0, fn); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first caller: %v", err)
	}
	select {
	case <-cancelled:
		t.Fatal("the call was cancelled while a caller still waited")
	case <-time.After(50 * time.Millisecond):
	}
	if err := <-done2; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second caller: %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("the call went on after its last caller left")
	}
}

// TestLinger: with a linger, a call whose last caller gave up goes on,
// and a retry within the linger joins it and gets its result.
func TestLinger(t *testing.T) {
	var g flight.Group[string]
	var calls atomic.Int64
	release := make(chan struct{})
	fn := func(ctx context.Context) (string, error) {
		calls.Add(1)
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.Do(ctx, "k", 5*time.Second, fn); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first try: %v", err)
	}
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	if v, err := g.Do(context.Background(), "k", 5*time.Second, fn); err != nil || v != "done" || calls.Load() != 1 {
		t.Fatalf("retry: %q, %v after %d calls", v, err, calls.Load())
	}
}

// TestJoin: Join waits for a call that runs, and starts none.
func TestJoin(t *testing.T) {
	var g flight.Group[int]
	ctx := context.Background()
	if _, _, ok := g.Join(ctx, "k", 0); ok {
		t.Fatal("joined a call that does not run")
	}
	release := make(chan struct{})
	started := make(chan struct{})
	go g.Do(ctx, "k", 0, func(context.Context) (int, error) { close(started); <-release; return 7, nil })
	<-started
	go func() { time.Sleep(20 * time.Millisecond); close(release) }()
	if v, err, ok := g.Join(ctx, "k", 0); !ok || err != nil || v != 7 {
		t.Fatalf("Join: %v %v %v", v, err, ok)
	}
}
