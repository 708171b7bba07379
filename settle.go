package vouch

import (
	"context"
	"sync"
	"sync/atomic"
)

// notNeeded is the reason given to referrers left unverified once the
// policy had settled the verdict.
const notNeeded = "not needed: the policy was already satisfied"

// settle is the verify phase's shared state. Every write to the tree during
// the phase, and every policy call that reads it, holds mu.
type settle struct {
	mu      sync.Mutex
	root    *Node
	pending map[*Node]bool
	settler Settler
	done    atomic.Bool
	cancel  context.CancelFunc
}

// publish runs write under the lock, unless the verdict is settled: from
// then on the tree stays as the policy saw it (and what is pending becomes
// skipped). It reports whether write ran.
func (st *settle) publish(write func()) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done.Load() {
		return false
	}
	write()
	return true
}

// finish publishes node's outcome with write, marks it checked and, unless
// it failed, asks the policy whether the verdict is settled.
func (st *settle) finish(ctx context.Context, ref Reference, node *Node, write func()) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done.Load() {
		return
	}
	write()
	delete(st.pending, node)
	if st.settler == nil || node.Outcome == Failed || node.Outcome == Errored {
		return
	}
	if len(st.pending) == 0 {
		return // nothing left to spare
	}
	if st.settler.Settled(ctx, ref, st.root, func(n *Node) bool { return st.pending[n] }) {
		st.done.Store(true)
		st.cancel()
	}
}
