package reload_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/reload"
)

// generation returns a generation; its executor for requests without a
// namespace tells it apart from others.
func generation(t *testing.T, hash string) *reload.Generation {
	t.Helper()
	ex, err := engine.NewNamespaceExecutors(engine.NamespaceOptions{Policy: policy.Default([]string{"notation"}), PolicyHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	return &reload.Generation{Executors: ex, PolicyHash: hash}
}

// recorder records the Holder's hooks.
type recorder struct {
	mu       sync.Mutex
	served   []string
	reloads  []string
	failures int
}

func (r *recorder) hooks() reload.Hooks {
	return reload.Hooks{
		OnServe: func(g *reload.Generation) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.served = append(r.served, g.PolicyHash)
		},
		OnReload: func(err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil {
				r.failures++
				r.reloads = append(r.reloads, "failure")
				return
			}
			r.reloads = append(r.reloads, "success")
		},
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestHolderPin: a request pinned before a swap is decided by the old
// generation to its end; new requests by the new one; executor and hash
// always come from the same generation.
func TestHolderPin(t *testing.T) {
	var rec recorder
	h, err := reload.NewHolder(generation(t, "g1"), reload.HolderOptions{Hooks: rec.hooks(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	g1 := h.Current()
	pinned := h.Pin(context.Background())
	g2 := generation(t, "g2")
	h.Swap(g2)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want *reload.Generation
	}{
		{"pinned before the swap", pinned, g1},
		{"derived from the pinned context", context.WithValue(pinned, struct{}{}, 1), g1},
		{"new request", h.Pin(context.Background()), g2},
		{"unpinned", context.Background(), g2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, hash := h.Executor(tc.ctx, "")
			want, _ := tc.want.Executors.Executor("")
			if hash != tc.want.PolicyHash || ex != want {
				t.Fatalf("hash %s, executor %p: want %s, %p", hash, ex, tc.want.PolicyHash, want)
			}
		})
	}
	if got := strings.Join(rec.served, ","); got != "g1,g2" {
		t.Errorf("served %s", got)
	}
	if _, err := reload.NewHolder(&reload.Generation{}, reload.HolderOptions{}); err == nil {
		t.Error("a generation without executors was accepted")
	}
}

// files is what a fake Poll reads: a version, and whether it builds.
type files struct {
	mu      sync.Mutex
	version string
	broken  bool
	builds  int
	// during, when set, runs in the middle of each build (a change
	// written while the files are read).
	during func(*files)
}

func (f *files) set(version string, broken bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version, f.broken = version, broken
}

func (f *files) poll(t *testing.T) *reload.Poll {
	return &reload.Poll{
		Fingerprint: func() (string, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return "fp-" + f.version, nil
		},
		Build: func(context.Context) (*reload.Generation, error) {
			f.mu.Lock()
			f.builds++
			version, broken, during := f.version, f.broken, f.during
			f.mu.Unlock()
			if during != nil {
				f.mu.Lock()
				during(f)
				f.mu.Unlock()
			}
			if broken {
				return nil, fmt.Errorf("%s does not build", version)
			}
			return generation(t, version), nil
		},
		Logger: quiet(),
	}
}

// TestPoll: a change is built once and swapped in; a broken change is
// rejected once and not built again until the files change; files that
// change during a build are built again on the next look, never swapped in
// as they were read.
func TestPoll(t *testing.T) {
	ctx := context.Background()
	f := &files{version: "g1"}
	p := f.poll(t)
	first, err := p.First(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	h, err := reload.NewHolder(first, reload.HolderOptions{Hooks: rec.hooks(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	current := func() string { return h.Current().PolicyHash }
	step := func(what string, looks int, wantHash string, wantBuilds int) {
		t.Helper()
		for range looks {
			p.Check(ctx, h)
		}
		if current() != wantHash || f.builds != wantBuilds {
			t.Fatalf("%s: serving %s after %d builds, want %s after %d", what, current(), f.builds, wantHash, wantBuilds)
		}
	}
	step("unchanged", 3, "g1", 1)
	f.set("g2", false)
	step("valid change", 3, "g2", 2)
	f.set("g3", true)
	step("broken change, looked at thrice", 3, "g2", 3)
	if rec.failures != 1 {
		t.Fatalf("%d failures reported, want 1", rec.failures)
	}
	f.set("g2", false)
	step("back to the serving files", 2, "g2", 3)

	// A change written during the build: not swapped in as read, built
	// again on the next look.
	f.set("g1", false)
	f.during = func(f *files) {
		f.during = nil
		f.version = "g4"
	}
	step("changed during the build", 1, "g2", 4)
	step("next look", 1, "g4", 5)
	if got := strings.Join(rec.reloads, ","); got != "success,failure,success" {
		t.Errorf("reloads %s", got)
	}
}

// TestPollFirst: First fails on a broken configuration, and on files that
// never stop changing while they are read.
func TestPollFirst(t *testing.T) {
	ctx := context.Background()
	f := &files{version: "g1", broken: true}
	if _, err := f.poll(t).First(ctx); err == nil || !strings.Contains(err.Error(), "g1 does not build") {
		t.Fatalf("broken: %v", err)
	}
	n := 0
	f = &files{version: "g1"}
	var change func(*files)
	change = func(f *files) {
		n++
		f.version = fmt.Sprintf("v%d", n)
		f.during = change
	}
	f.during = change
	if _, err := f.poll(t).First(ctx); !errors.Is(err, reload.ErrChanging) {
		t.Fatalf("changing: %v", err)
	}
}

// TestHolderEmpty: a Holder started without a generation answers no
// executor (the engine fails closed) and reports rejections, until the
// first Swap.
func TestHolderEmpty(t *testing.T) {
	rec := &recorder{}
	h, err := reload.NewHolder(nil, reload.HolderOptions{Hooks: rec.hooks(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := h.Pin(context.Background())
	if ex, hash := h.Executor(ctx, "ns"); ex != nil || hash != "" || h.Current() != nil {
		t.Fatalf("empty holder answered %p %q", ex, hash)
	}
	h.Reject("fp", errors.New("spec.verifiers[0].type: required"))
	h.Swap(generation(t, "g1"))
	if ex, hash := h.Executor(ctx, ""); ex == nil || hash != "g1" {
		t.Fatalf("after the first swap: %p %q", ex, hash)
	}
	if got := strings.Join(rec.reloads, ","); got != "failure,success" {
		t.Errorf("reloads %s", got)
	}
}
