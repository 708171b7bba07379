package vouch

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// verifyGraph is the walk's verify phase: it checks every referrer the walk
// left a check on, in the tree's order, at most w.n at once. When the
// policy is a Settler (and Executor.VerifyAll is off) it stops as soon as
// the policy says the verdict is settled; the referrers not checked by then
// are skipped with the reason notNeeded, and their manifests may never have
// been fetched.
func (w *walker) verifyGraph(ctx context.Context, root *Node) error {
	var checks []*check
	w.collectChecks(root, &checks)
	if len(checks) == 0 {
		return nil
	}
	st := &settle{root: root, pending: make(map[*Node]bool, len(checks))}
	for _, c := range checks {
		st.pending[c.node] = true
	}
	if s, ok := w.e.Policy.(Settler); ok && !w.e.VerifyAll {
		st.settler = s
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st.cancel = cancel
	err := w.runChecks(ctx, st, checks)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done.Load() {
		for n := range st.pending {
			n.Outcome, n.Reason = Skipped, notNeeded
		}
		return nil
	}
	return err
}

// collectChecks lists the checks under n, parents before their referrers.
func (w *walker) collectChecks(n *Node, out *[]*check) {
	for _, m := range n.Manifests {
		w.collectChecks(m, out)
	}
	for _, r := range n.Referrers {
		if c := w.checkOf(r); c != nil {
			*out = append(*out, c)
		}
		w.collectChecks(r, out)
	}
}

// runChecks runs checks, w.n at once, starting them in order. When the
// policy can settle early, the first check of each parent and artifact type
// goes first, and the rest only if the verdict is still open: an image with
// many signatures costs one signature's requests when the first verifies.
func (w *walker) runChecks(ctx context.Context, st *settle, checks []*check) error {
	if st.settler == nil {
		return w.runWave(ctx, st, checks)
	}
	type group struct {
		parent string
		typ    string
	}
	seen := map[group]bool{}
	var first, rest []*check
	for _, c := range checks {
		g := group{c.parent.Digest.String(), c.node.ArtifactType}
		if seen[g] {
			rest = append(rest, c)
			continue
		}
		seen[g] = true
		first = append(first, c)
	}
	if err := w.runWave(ctx, st, first); err != nil || len(rest) == 0 {
		return err
	}
	return w.runWave(ctx, st, rest)
}

// runWave runs checks, w.n at once, starting them in order, until the
// verdict is settled.
func (w *walker) runWave(ctx context.Context, st *settle, checks []*check) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.n)
	for _, c := range checks {
		if st.done.Load() || gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if st.done.Load() {
				return nil // settled while this one waited for its turn
			}
			err := w.runCheck(gctx, st, c)
			if err != nil && st.done.Load() {
				return nil // cut short because it was no longer needed
			}
			return err
		})
	}
	return g.Wait()
}

// runCheck loads c's manifest if the walk deferred it, walks referrers the
// walk could not know of, runs the verifiers that handle the node's type and
// publishes the results.
func (w *walker) runCheck(ctx context.Context, st *settle, c *check) error {
	node := c.node
	var nested []*check
	if c.m == nil {
		l, err := w.load(ctx, c)
		if err != nil {
			return err
		}
		if l.failed != "" {
			st.finish(ctx, w.ref, node, func() { l.apply(node) })
			return nil
		}
		if !st.publish(func() { l.apply(node) }) {
			return nil
		}
		if !w.isLeaf(l.artifactType) {
			// Listed as a signature, but its manifest says otherwise: its
			// referrers were not looked up by the walk. They are now, and
			// are published before the node's outcome, so that the policy
			// never judges it with referrers still unknown.
			sub := &Node{}
			if err := w.referrers(ctx, sub, c.artifact(), c.depth, false); err != nil {
				return err
			}
			w.collectChecks(sub, &nested)
			published := st.publish(func() {
				node.Referrers = sub.Referrers
				for _, n := range nested {
					st.pending[n.node] = true
				}
			})
			if !published {
				return nil
			}
		}
	}
	var results []Result
	req := &VerifyRequest{Reference: w.ref, Subject: c.parent, Artifact: c.artifact(), Manifest: c.m.Manifest, Repository: w.repo}
	for _, v := range w.e.Verifiers {
		if !v.Handles(req.Artifact.ArtifactType) {
			continue
		}
		if err := w.acquire(ctx); err != nil {
			return err
		}
		res, err := v.Verify(ctx, req)
		w.release()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			res = Result{Outcome: Errored, Reason: err.Error()}
		}
		res.Verifier = v.Name()
		if res.Outcome == "" {
			res.Outcome = Errored
			res.Reason = "verifier returned no outcome"
		}
		results = append(results, res)
	}
	st.finish(ctx, w.ref, node, func() {
		node.Results = results
		node.summarizeResults()
	})
	if len(nested) > 0 {
		return w.runChecks(ctx, st, nested)
	}
	return nil
}
