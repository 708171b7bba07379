package kube_test

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vouch-project/vouch/api/v1alpha1"
	"github.com/vouch-project/vouch/server/kube"
)

// staleClient answers Gets of the ClusterVouchConfig with a copy saved
// earlier while one is set, as an API server answering from a lagging
// cache would; everything else goes to the real API server.
type staleClient struct {
	client.WithWatch
	mu  sync.Mutex
	old *v1alpha1.ClusterVouchConfig
}

func (c *staleClient) set(old *v1alpha1.ClusterVouchConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.old = old
}

func (c *staleClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.mu.Lock()
	old := c.old
	c.mu.Unlock()
	if cr, ok := obj.(*v1alpha1.ClusterVouchConfig); ok && old != nil {
		old.DeepCopyInto(cr)
		return nil
	}
	return c.WithWatch.Get(ctx, key, obj, opts...)
}

// TestSourceIgnoresStaleReads: a ClusterVouchConfig read at a lower
// generation than one already read (same object) is not applied, so vouch
// never steps back to an older configuration; the newer one keeps serving.
func TestSourceIgnoresStaleReads(t *testing.T) {
	b := newBed(t)
	b.create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notation-trust-policy"}, Data: map[string]string{"trustpolicy.json": trustPolicy}})
	b.setSecret(t, "notation-ca", map[string][]byte{"a.crt": b.ca1, "b.crt": b.ca2})
	gen := b.setSpec(t, churnSpec("trust-a", "a.crt"))
	sc := &staleClient{WithWatch: b.as(t, serviceAccount)}
	v := startPinned(t, sc)
	b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
	images := []string{b.image("one"), b.image("two"), b.image("unsigned")}
	a1, b2 := generation{"trust-a", "CA1"}, generation{"trust-b", "CA2"}
	v.waitGeneration(t, images, a1)
	old := b.get(t)

	gen = b.patchSpec(t, churnSpec("trust-b", "b.crt"))
	b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
	v.waitGeneration(t, images, b2)
	swaps := v.swaps.Load()

	// From now on the resource reads as it was at the older generation;
	// a change of the Secret it references makes the source check again.
	sc.set(old)
	b.setSecret(t, "notation-ca", map[string][]byte{"a.crt": b.ca1, "b.crt": b.ca2, "unused.crt": b.ca1})
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		g, err := v.ask(images)
		if err != nil {
			t.Fatal(err)
		}
		if g != b2 {
			t.Fatalf("answered under %s after a stale read of generation %d; want %s (generation %d) to keep serving\n%s", g, old.Generation, b2, gen, v.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := v.swaps.Load() - swaps; n != 0 {
		t.Errorf("%d swaps after the stale read, want 0", n)
	}
	sc.set(nil)
}
