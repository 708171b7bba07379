package kube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/api/v1alpha1"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/server/internal/servertest"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/server/reload"
	"github.com/vouch-project/vouch/store/registry"
)

// churnSpec is a ClusterVouchConfig spec whose one notation verifier,
// named verifier, trusts the certificates of key key of the Secret
// notation-ca.
func churnSpec(verifier, key string) string {
	return `
trustStores:
  - name: ca:test
    refs: [{kind: Secret, name: notation-ca, key: ` + key + `}]
verifiers:
  - name: ` + verifier + `
    type: notation
    notation:
      trustPolicyRef: {kind: ConfigMap, name: notation-trust-policy, key: trustpolicy.json}
`
}

// generation is what one answer reveals of the configuration it was made
// under: the verifier's name (the spec) and the CA trusted (the Secret),
// told by which of the images "one" (signed under CA1) and "two" (under
// CA2) is allowed.
type generation struct{ verifier, ca string }

func (g generation) String() string { return g.verifier + " trusting " + g.ca }

// TestSourceChurn changes the ClusterVouchConfig, then its trust Secret,
// hundreds of times, between two valid configurations each time, while
// eight clients keep asking the Gatekeeper provider about three images in
// one request: the image signed under CA1, the one under CA2, an unsigned
// one. The server is wired as vouch serve wires it (each request pinned to
// the generation serving when it arrived, verdicts cached under the
// fingerprint of the spec and of what the references held). Every request
// must be answered, every answer must come whole from one of the two
// configurations (one verifier for all three images, and the verdicts of
// the CA that verifier's configuration trusts), no change may be rejected,
// and the status must end Ready for the last generation. The source reads
// the cluster as the service account of deploy/rbac (impersonated).
//
// The file-source version of this check is cmd/vouch's
// TestServeReloadChurn.
func TestSourceChurn(t *testing.T) {
	const updates = 200 // per phase
	b := newBed(t)
	b.create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notation-trust-policy"}, Data: map[string]string{"trustpolicy.json": trustPolicy}})
	b.setSecret(t, "notation-ca", map[string][]byte{"a.crt": b.ca1, "b.crt": b.ca2})
	specA, specB := churnSpec("trust-a", "a.crt"), churnSpec("trust-b", "b.crt")
	gen := b.setSpec(t, specA)
	v := startPinned(t, b.as(t, serviceAccount))
	b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
	images := []string{b.image("one"), b.image("two"), b.image("unsigned")}

	a1, b2, a2 := generation{"trust-a", "CA1"}, generation{"trust-b", "CA2"}, generation{"trust-a", "CA2"}
	for _, phase := range []struct {
		name string
		// update makes change i (0, 1, ...): A, B, A, ... as the
		// phase defines them.
		update func(t *testing.T, i int)
		// a and b are what answers under each configuration reveal.
		a, b generation
	}{
		{
			// The spec alone changes: verifier and key together.
			name: "ClusterVouchConfig",
			update: func(t *testing.T, i int) {
				spec := specA
				if i%2 == 1 {
					spec = specB
				}
				gen = b.patchSpec(t, spec)
			},
			a: a1, b: b2,
		},
		{
			// The Secret alone changes: the key the spec (A) names holds
			// CA1, then CA2.
			name: "Secret",
			update: func(t *testing.T, i int) {
				ca := b.ca1
				if i%2 == 1 {
					ca = b.ca2
				}
				b.setSecret(t, "notation-ca", map[string][]byte{"a.crt": ca, "b.crt": b.ca2})
			},
			a: a1, b: a2,
		},
	} {
		t.Run(phase.name, func(t *testing.T) {
			phase.update(t, 0)
			v.waitGeneration(t, images, phase.a)
			// A seen answer under A may predate a check still building
			// what it read before the last update (the previous phase
			// ended B, A, ... and A served already): wait until the
			// status says the latest spec serves, so that no check that
			// read an older one is still running when the phase starts.
			b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
			v.waitGeneration(t, images, phase.a)
			swaps0, rejects0 := v.swaps.Load(), v.rejects.Load()

			var (
				stop     atomic.Bool
				requests atomic.Int64
				failed   atomic.Int64
				mu       sync.Mutex
				seen     = map[generation]int{}
				problems []string
				wg       sync.WaitGroup
			)
			fail := func(format string, args ...any) {
				failed.Add(1)
				mu.Lock()
				defer mu.Unlock()
				if len(problems) < 10 {
					problems = append(problems, fmt.Sprintf(format, args...))
				}
			}
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						requests.Add(1)
						g, err := v.ask(images)
						if err != nil {
							fail("%v", err)
							continue
						}
						if g != phase.a && g != phase.b {
							fail("an answer under %s, neither %s nor %s", g, phase.a, phase.b)
							continue
						}
						mu.Lock()
						seen[g]++
						mu.Unlock()
					}
				}()
			}
			defer func() {
				stop.Store(true)
				wg.Wait()
			}()

			// B serves once for sure; then the churn, ending with A.
			phase.update(t, 1)
			v.waitGeneration(t, images, phase.b)
			start := time.Now()
			for i := range updates {
				phase.update(t, i)
				time.Sleep(10 * time.Millisecond)
			}
			phase.update(t, 0)
			v.waitGeneration(t, images, phase.a)
			elapsed := time.Since(start)
			stop.Store(true)
			wg.Wait()

			for _, p := range problems {
				t.Error(p)
			}
			swaps, rejects := v.swaps.Load()-swaps0, v.rejects.Load()-rejects0
			t.Logf("%d updates of the %s in %v: %d swaps, %d rejected; %d requests of 3 images, %d failed or half-applied (%d answered under %s, %d under %s)",
				updates+2, phase.name, elapsed.Round(time.Millisecond), swaps, rejects, requests.Load(), failed.Load(),
				seen[phase.a], phase.a, seen[phase.b], phase.b)
			if rejects != 0 {
				t.Errorf("%d changes rejected; every update was valid\n%s", rejects, v.logs.String())
			}
			if swaps < 2 || seen[phase.a] == 0 || seen[phase.b] == 0 {
				t.Errorf("%d swaps, answers %v: want at least 2 swaps and answers under both configurations", swaps, seen)
			}
		})
	}
	// The status caught up with the last generation of the spec.
	b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
}

// patchSpec replaces the spec of the ClusterVouchConfig "vouch" with the
// spec written in YAML, by a merge patch (no resourceVersion: vouch's
// status writes in between do not conflict), and returns its generation.
func (b *bed) patchSpec(t *testing.T, spec string) int64 {
	t.Helper()
	var s v1alpha1.ClusterVouchConfigSpec
	if err := yaml.UnmarshalStrict([]byte(spec), &s); err != nil {
		t.Fatal(err)
	}
	patch, err := json.Marshal(map[string]any{"spec": s})
	if err != nil {
		t.Fatal(err)
	}
	cr := &v1alpha1.ClusterVouchConfig{ObjectMeta: metav1.ObjectMeta{Name: kube.DefaultName}}
	if err := b.admin.Patch(context.Background(), cr, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	return cr.Generation
}

// pinnedServer is a Source feeding a Holder, and an HTTPS server wired to
// it as vouch serve is: the engine asks the Holder for its executor, and
// each request is pinned to the generation that served when it arrived.
type pinnedServer struct {
	stack          *servertest.Stack
	logs           *servertest.SyncBuffer
	swaps, rejects atomic.Int64
}

// startPinned starts a Source reading with c and a server deciding under
// its generations; both stop when the test ends.
func startPinned(t *testing.T, c client.WithWatch) *pinnedServer {
	t.Helper()
	v := &pinnedServer{logs: &servertest.SyncBuffer{}}
	logger := server.NewLogger(v.logs, slog.LevelInfo)
	holder, err := reload.NewHolder(nil, reload.HolderOptions{Logger: logger, Hooks: reload.Hooks{
		OnReload: func(err error) {
			if err != nil {
				v.rejects.Add(1)
			} else {
				v.swaps.Add(1)
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	src, err := kube.New(kube.Options{
		Client: c, Namespace: ns, Logger: logger,
		Build: func(_ context.Context, s *kube.Snapshot) (*reload.Generation, error) {
			verifiers, pol, err := s.Spec.Build(s.Resolver, kube.SpecPrefix)
			if err != nil {
				return nil, err
			}
			hash := "kubernetes:" + s.Fingerprint
			ex, err := engine.NewNamespaceExecutors(engine.NamespaceOptions{Base: vouch.Executor{Store: st, Verifiers: verifiers}, Policy: pol, PolicyHash: hash})
			if err != nil {
				return nil, err
			}
			return &reload.Generation{Executors: ex, PolicyHash: hash}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	v.stack = servertest.Start(t, servertest.Options{
		Engine:         func(o *engine.Options) { o.Executor = holder.Executor },
		RequestContext: holder.Pin,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Start(ctx, holder) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return v
}

// ask asks the Gatekeeper provider, with the graph, about images: the one
// signed under CA1, the one under CA2 and the unsigned one, in this order.
// It returns the generation the answer reveals, or why the answer is not
// one whole answer of a valid configuration.
func (v *pinnedServer) ask(images []string) (generation, error) {
	keys, _ := json.Marshal(images)
	body := `{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":` + string(keys) + `}}`
	resp, err := v.stack.Client.Post(v.stack.URL+"/gatekeeper/v1/verify?graph=true", "application/json", strings.NewReader(body))
	if err != nil {
		return generation{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return generation{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return generation{}, fmt.Errorf("status %d: %s", resp.StatusCode, data)
	}
	var out struct {
		Response struct {
			SystemError string `json:"systemError"`
			Items       []struct {
				Error string `json:"error"`
				Value struct {
					IsSuccess bool        `json:"isSuccess"`
					Graph     *vouch.Node `json:"graph"`
				} `json:"value"`
			} `json:"items"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return generation{}, err
	}
	if out.Response.SystemError != "" || len(out.Response.Items) != len(images) {
		return generation{}, fmt.Errorf("answer %s", data)
	}
	allowed := make([]bool, len(images))
	verifiers := map[string]bool{}
	for i, it := range out.Response.Items {
		if it.Error != "" {
			return generation{}, fmt.Errorf("%s undecided: %s", images[i], it.Error)
		}
		allowed[i] = it.Value.IsSuccess
		if it.Value.Graph != nil {
			it.Value.Graph.Walk(func(n *vouch.Node, _ int) {
				for _, r := range n.Results {
					verifiers[r.Verifier] = true
				}
			})
		}
	}
	if len(verifiers) != 1 {
		return generation{}, fmt.Errorf("verifiers %v in one answer: half-applied", verifiers)
	}
	var g generation
	for name := range verifiers {
		g.verifier = name
	}
	switch {
	case allowed[2]:
		return g, fmt.Errorf("the unsigned image allowed (%s)", g.verifier)
	case allowed[0] && !allowed[1]:
		g.ca = "CA1"
	case !allowed[0] && allowed[1]:
		g.ca = "CA2"
	default:
		return g, fmt.Errorf("by %s, image one allowed=%v and two allowed=%v: half-applied", g.verifier, allowed[0], allowed[1])
	}
	return g, nil
}

// waitGeneration asks about images until the answer comes from g.
func (v *pinnedServer) waitGeneration(t *testing.T, images []string, g generation) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := v.ask(images)
		if err == nil && got == g {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer under %s: %v, %v\n%s", g, got, err, v.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
