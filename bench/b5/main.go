// Command b5 is benchmark B5: how time and memory grow along three axes,
// with a table and a PNG plot (gnuplot) per axis.
//
//   - referrers per subject (1, 10, 100, 1,000 notation signatures on one
//     image): `vouch verify`, `notation verify`, `ratify verify`, fresh
//     processes, wall time, peak RSS and registry requests;
//   - graph depth (a chain of artifacts, each signed, 1 to 8 levels):
//     `vouch verify` (the peers do not walk nested referrers without
//     per-type configuration: notation and cosign never, Ratify only for
//     types named in a verifier's nestedReferences);
//   - images per request (1 to 100, Gatekeeper requests): `vouch serve`
//     against `ratify serve`, cold (new images each run, registry behind a
//     20 ms delay proxy) and warm (the same request again).
//
// Usage: go run ./bench/b5 [-runs 5] [-plots docs/performance] [-axes referrers,depth,images]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch/bench/delayproxy"
	"github.com/vouch-project/vouch/bench/internal/benchenv"
	"github.com/vouch-project/vouch/bench/loadgen"
	"github.com/vouch-project/vouch/internal/testbed"
)

type flags struct {
	runs      int
	plots     string
	axes      string
	referrers string
	depths    string
	images    string
	delay     time.Duration
	keep      bool
}

func main() {
	var f flags
	flag.IntVar(&f.runs, "runs", 5, "measured runs per point (medians)")
	flag.StringVar(&f.plots, "plots", "docs/performance", "folder for the PNG plots (relative to the repository root)")
	flag.StringVar(&f.axes, "axes", "referrers,depth,images", "axes to run")
	flag.StringVar(&f.referrers, "referrers", "1,10,100,1000", "signatures per subject")
	flag.StringVar(&f.depths, "depths", "1,2,4,8", "graph depths")
	flag.StringVar(&f.images, "images", "1,2,5,10,20,50,100", "images per request")
	flag.DurationVar(&f.delay, "delay", 20*time.Millisecond, "registry delay for the images axis")
	flag.BoolVar(&f.keep, "keep", false, "keep the scratch folder")
	flag.Parse()
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "b5:", err)
		os.Exit(1)
	}
}

func ints(s string) []int {
	var out []int
	for _, p := range strings.Split(s, ",") {
		var n int
		fmt.Sscan(p, &n)
		out = append(out, n)
	}
	return out
}

// series is one line of a plot: y values over the axis's x values.
type series struct {
	name string
	y    []float64
}

func run(f flags) error {
	ctx := context.Background()
	env, fx, closeAll, err := benchenv.Open(f.keep)
	if err != nil {
		return err
	}
	defer closeAll()
	fmt.Print(env.Header("B5: growth", fmt.Sprintf("go run ./bench/b5 -runs %d -axes %s -referrers %s -depths %s -images %s -delay %v", f.runs, f.axes, f.referrers, f.depths, f.images, f.delay)))
	fmt.Println()
	plots := f.plots
	if !filepath.IsAbs(plots) {
		plots = filepath.Join(env.Root, plots)
	}
	for _, axis := range strings.Split(f.axes, ",") {
		var err error
		switch axis {
		case "referrers":
			err = referrersAxis(ctx, env, fx, ints(f.referrers), f.runs, plots)
		case "depth":
			err = depthAxis(ctx, env, fx, ints(f.depths), f.runs, plots)
		case "images":
			err = imagesAxis(ctx, env, fx, ints(f.images), f.runs, f.delay, plots)
		default:
			err = fmt.Errorf("unknown axis %q", axis)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", axis, err)
		}
	}
	fmt.Printf("- load average at end: %s\n", benchenv.LoadAvg())
	return nil
}

// countingProxy returns a proxy without delay in front of the registry, to
// count each tool's requests.
func countingProxy(fx *benchenv.Fixture) (*delayproxy.Server, error) {
	return fx.Registry.Proxy(0, 0)
}

func referrersAxis(ctx context.Context, env *benchenv.Env, fx *benchenv.Fixture, counts []int, runs int, plots string) error {
	proxy, err := countingProxy(fx)
	if err != nil {
		return err
	}
	defer proxy.Close()
	r, err := testbed.Repo(fx.Registry.Host, "bench/b5-referrers")
	if err != nil {
		return err
	}
	var tbl benchenv.Table
	tbl.Header = []string{"signatures", "tool", "wall ms (median)", "peak RSS MiB", "CPU ms", "registry requests", "peer/vouch wall"}
	wall := map[string][]float64{}
	rss := map[string][]float64{}
	names := []string{"vouch", "notation", "ratify"}
	for _, n := range counts {
		tag := fmt.Sprintf("n%d", n)
		benchenv.Logf("referrers: signing one image %d times", n)
		start := time.Now()
		desc, err := testbed.PushImage(ctx, r, tag, tag)
		if err != nil {
			return err
		}
		if err := fx.Signer.SignMany(ctx, fx.Registry.Host, "bench/b5-referrers", desc, n); err != nil {
			return err
		}
		benchenv.Logf("  signed in %v", time.Since(start).Round(time.Millisecond))
		tools := fx.NotationTools(fmt.Sprintf("%s/bench/b5-referrers:%s", proxy.Host, tag))
		reqs := map[string]int{}
		samples, err := benchenv.Interleave(benchenv.BeforeEach(tools, proxy.Reset), runs, func(t *benchenv.Tool, _ int) { reqs[t.Name] = proxy.Counts().Total })
		if err != nil {
			return err
		}
		v := benchenv.Summarize(samples["vouch"])
		for _, name := range names {
			s := benchenv.Summarize(samples[name])
			ratio := "1 (reference)"
			if name != "vouch" {
				ratio = benchenv.Ratio(float64(s.Wall), float64(v.Wall))
			}
			tbl.Add(fmt.Sprint(n), name, benchenv.Ms(s.Wall), benchenv.MiB(s.MaxRSS), benchenv.Ms(s.CPU), fmt.Sprint(reqs[name]), ratio)
			wall[name] = append(wall[name], msf(s.Wall))
			rss[name] = append(rss[name], float64(s.MaxRSS)/(1<<20))
		}
	}
	fmt.Printf("### Referrers per subject (notation signatures on one image; fresh process per run, medians of %d)\n\n%s\n", runs, tbl.String())
	fmt.Println("notation verify stops at the first signature that verifies (and reads at most 100), one at a time; vouch checks up to --concurrency (8) at once and stops once one has settled the verdict; Ratify verifies every signature. Requests are counted through a proxy without delay.")
	fmt.Println()
	var ws, rs []series
	for _, n := range names {
		ws = append(ws, series{n + " wall ms", wall[n]})
		rs = append(rs, series{n + " peak RSS MiB", rss[n]})
	}
	return plot(env, plots, "b5-referrers", "Signatures per subject (one image)", "wall time, ms", "peak RSS, MiB", true, counts, ws, rs)
}

const nodeType = "application/vnd.vouch.bench.node.v1+json"

func depthAxis(ctx context.Context, env *benchenv.Env, fx *benchenv.Fixture, depths []int, runs int, plots string) error {
	proxy, err := countingProxy(fx)
	if err != nil {
		return err
	}
	defer proxy.Close()
	r, err := testbed.Repo(fx.Registry.Host, "bench/b5-depth")
	if err != nil {
		return err
	}
	var tbl benchenv.Table
	tbl.Header = []string{"depth", "nodes", "wall ms (median)", "peak RSS MiB", "CPU ms", "registry requests", "exit code"}
	var wall, rss []float64
	for _, d := range depths {
		tag := fmt.Sprintf("d%d", d)
		desc, err := testbed.PushImage(ctx, r, tag, tag)
		if err != nil {
			return err
		}
		// The image and each of d-1 chained artifacts carry a signature:
		// the deepest signature is d levels below the image.
		nodes := 1
		subject := desc
		for level := 1; level <= d; level++ {
			if err := fx.Signer.Sign(ctx, r, subject); err != nil {
				return err
			}
			nodes++
			if level == d {
				break
			}
			var next ocispec.Descriptor
			if next, err = testbed.PushArtifact(ctx, r, subject, nodeType, "application/json", []byte(fmt.Sprintf(`{"level":%d}`, level))); err != nil {
				return err
			}
			nodes++
			subject = next
		}
		t := fx.NotationTools(fmt.Sprintf("%s/bench/b5-depth:%s", proxy.Host, tag))[0]
		code := 0
		t.Check = func(_, _ []byte, err error) error {
			// A node no verifier handles may make the default policy deny;
			// the walk is what is measured.
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
				code = 1
				return nil
			}
			return err
		}
		reqs := 0
		samples, err := benchenv.Interleave(benchenv.BeforeEach([]*benchenv.Tool{t}, proxy.Reset), runs, func(*benchenv.Tool, int) { reqs = proxy.Counts().Total })
		if err != nil {
			return err
		}
		s := benchenv.Summarize(samples["vouch"])
		tbl.Add(fmt.Sprint(d), fmt.Sprint(nodes), benchenv.Ms(s.Wall), benchenv.MiB(s.MaxRSS), benchenv.Ms(s.CPU), fmt.Sprint(reqs), fmt.Sprint(code))
		wall = append(wall, msf(s.Wall))
		rss = append(rss, float64(s.MaxRSS)/(1<<20))
	}
	fmt.Printf("### Graph depth (vouch verify; a chain of artifacts of type %s, the image and each artifact signed; medians of %d)\n\n%s\n", nodeType, runs, tbl.String())
	return plot(env, plots, "b5-depth", "Graph depth (levels of referrers)", "wall time, ms", "peak RSS, MiB", false, depths,
		[]series{{"vouch wall ms", wall}}, []series{{"vouch peak RSS MiB", rss}})
}

func imagesAxis(ctx context.Context, env *benchenv.Env, fx *benchenv.Fixture, sizes []int, runs int, delay time.Duration, plots string) error {
	proxy, err := fx.Registry.Proxy(delay, 0)
	if err != nil {
		return err
	}
	defer proxy.Close()
	vouch, err := env.StartVouch("vouch", "--notation-cert", fx.Signer.CAFile, "--plain-http", "--allow-internal-registry", proxy.Host)
	if err != nil {
		return err
	}
	defer vouch.Stop()
	ratify, err := env.StartRatify("ratify", fx.RatifyNotation, "--cache-enabled", "--cache-type", "ristretto")
	if err != nil {
		return err
	}
	defer ratify.Stop()
	servers := []*benchenv.Server{vouch, ratify}
	client, err := env.Client(64)
	if err != nil {
		return err
	}
	r, err := testbed.Repo(fx.Registry.Host, "bench/b5-images")
	if err != nil {
		return err
	}
	total := 0
	for _, n := range sizes {
		total += n
	}
	benchenv.Logf("images: pushing and signing %d images", total*runs*len(servers))
	// Fresh images for every server, size and run, so that every cold
	// request is cold for the server that gets it.
	next := 0
	fresh := func(n int) ([]string, error) {
		var keys []string
		for i := 0; i < n; i++ {
			tag := fmt.Sprintf("i%d", next)
			next++
			desc, err := testbed.PushImage(ctx, r, tag, tag)
			if err != nil {
				return nil, err
			}
			if err := fx.Signer.Sign(ctx, r, desc); err != nil {
				return nil, err
			}
			keys = append(keys, fmt.Sprintf("%s/bench/b5-images:%s", proxy.Host, tag))
		}
		return keys, nil
	}
	var tbl benchenv.Table
	tbl.Header = []string{"images", "server", "cold ms (median)", "warm ms (median)", "registry requests (cold, median)", "cold ms per image", "ratify/vouch cold", "runs not fully verified (cold, warm)"}
	cold := map[string][]float64{}
	warm := map[string][]float64{}
	for _, n := range sizes {
		c := map[string][]float64{}
		w := map[string][]float64{}
		rq := map[string][]int{}
		failed := map[string]int{}
		for run := 0; run < runs; run++ {
			for j := range servers {
				s := servers[(run+j)%len(servers)]
				keys, err := fresh(n)
				if err != nil {
					return err
				}
				proxy.Reset()
				t0 := time.Now()
				// A request that fails or leaves an image unverified (a
				// timeout) still counts with its time, and is reported.
				if _, err := loadgen.CheckSuccess(ctx, client, s.URL, keys); err != nil {
					failed[s.Name+" cold"]++
					benchenv.Logf("%s, %d images, cold: %.300v", s.Name, n, err)
				}
				c[s.Name] = append(c[s.Name], msf(time.Since(t0)))
				rq[s.Name] = append(rq[s.Name], proxy.Counts().Total)
				t0 = time.Now()
				if _, err := loadgen.CheckSuccess(ctx, client, s.URL, keys); err != nil {
					failed[s.Name+" warm"]++
					benchenv.Logf("%s, %d images, warm: %.300v", s.Name, n, err)
				}
				w[s.Name] = append(w[s.Name], msf(time.Since(t0)))
			}
		}
		for _, s := range servers {
			mc, mw := benchenv.Median(c[s.Name]), benchenv.Median(w[s.Name])
			ratio := "1 (reference)"
			if s.Name != "vouch" {
				ratio = benchenv.Ratio(mc, benchenv.Median(c["vouch"]))
			}
			tbl.Add(fmt.Sprint(n), s.Name, fmt.Sprintf("%.1f", mc), fmt.Sprintf("%.1f", mw), fmt.Sprint(benchenv.Median(rq[s.Name])), fmt.Sprintf("%.1f", mc/float64(n)), ratio,
				fmt.Sprintf("%d, %d of %d", failed[s.Name+" cold"], failed[s.Name+" warm"], runs))
			cold[s.Name] = append(cold[s.Name], mc)
			warm[s.Name] = append(warm[s.Name], mw)
		}
	}
	fmt.Printf("### Images per request (Gatekeeper requests; registry behind a %v delay proxy; cold: images never seen, warm: the same request again; medians of %d, failed runs included with their time: a systemError or an image answered with an error, such as a timeout)\n\n%s\n", delay, runs, tbl.String())
	fmt.Printf("Peak RSS after the axis: vouch %s MiB, ratify %s MiB. Keys are tag references. Ratify runs with --cache-enabled --cache-type ristretto (cache TTL 10 s, its default; the warm request follows within it).\n\n", benchenv.MiB(vouch.PeakRSS()), benchenv.MiB(ratify.PeakRSS()))
	var ys []series
	for _, s := range servers {
		ys = append(ys, series{s.Name + " cold ms", cold[s.Name]}, series{s.Name + " warm ms", warm[s.Name]})
	}
	return plot(env, plots, "b5-images", "Images per Gatekeeper request", "time to answer, ms", "", true, sizes, ys, nil)
}

// plot writes NAME.dat and NAME.png (gnuplot) under dir: y series on the
// left axis, y2 series on the right.
func plot(env *benchenv.Env, dir, name, xlabel, ylabel, y2label string, logx bool, xs []int, y, y2 []series) error {
	gp := env.Bin["gnuplot"]
	if gp == "" {
		benchenv.Logf("gnuplot is not installed: no plot %s", name)
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	all := append(append([]series(nil), y...), y2...)
	var dat strings.Builder
	dat.WriteString("# x")
	for _, s := range all {
		dat.WriteString("\t" + strings.ReplaceAll(s.name, " ", "_"))
	}
	dat.WriteString("\n")
	for i, x := range xs {
		fmt.Fprintf(&dat, "%d", x)
		for _, s := range all {
			fmt.Fprintf(&dat, "\t%.3f", s.y[i])
		}
		dat.WriteString("\n")
	}
	datPath := filepath.Join(env.Work, name+".dat")
	if err := os.WriteFile(datPath, []byte(dat.String()), 0o644); err != nil {
		return err
	}
	var sc strings.Builder
	fmt.Fprintf(&sc, "set terminal pngcairo size 900,560 noenhanced font ',10'\nset output '%s'\n", filepath.Join(dir, name+".png"))
	fmt.Fprintf(&sc, "set title 'vouch benchmark B5: %s (%s)'\nset xlabel '%s'\nset ylabel '%s'\nset key left top\nset grid\nset logscale y\n", xlabel, env.Commit, xlabel, ylabel)
	if logx {
		sc.WriteString("set logscale x\n")
	}
	if len(y2) > 0 {
		fmt.Fprintf(&sc, "set y2label '%s'\nset y2tics\nset logscale y2\n", y2label)
	}
	var plots []string
	for i, s := range all {
		axes := "x1y1"
		style := "linespoints lw 2"
		if i >= len(y) {
			axes = "x1y2"
			style = "linespoints dt 2"
		}
		plots = append(plots, fmt.Sprintf("'%s' using 1:%d axes %s with %s title '%s'", datPath, i+2, axes, style, s.name))
	}
	sc.WriteString("plot " + strings.Join(plots, ", \\\n  ") + "\n")
	cmd := exec.Command(gp)
	cmd.Stdin = strings.NewReader(sc.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		// pngcairo may be missing from a gnuplot build; fall back to png.
		cmd = exec.Command(gp)
		cmd.Stdin = strings.NewReader(strings.Replace(sc.String(), "pngcairo", "png", 1))
		if out2, err2 := cmd.CombinedOutput(); err2 != nil {
			return fmt.Errorf("gnuplot: %v\n%s\n%s", err, out, out2)
		}
	}
	fmt.Printf("Plot: %s\n\n", filepath.Join(filepath.Base(dir), name+".png"))
	return nil
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
