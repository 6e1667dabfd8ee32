// Package scale is the scale benchmark (`make bench-scale`): one real
// controller process on the local control plane, N Canaries with their
// Deployments, and what they cost idle and while a tenth of them release
// at once. It is not part of `make test`; it runs only when SLUICE_BENCH
// is set.
package scale

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/testenv"
)

const (
	perNamespace = 100
	// nodePods is what each fake node holds; the bench adds nodes until
	// every Canary's pods fit.
	nodePods = 3000
)

// settings are the benchmark's knobs, from the environment.
type settings struct {
	sizes      []int         // SLUICE_BENCH_SIZES: Canary counts, cumulative
	idle       time.Duration // SLUICE_BENCH_IDLE: idle window
	progress   float64       // SLUICE_BENCH_PROGRESS: share of all Canaries released in each wave
	stagger    bool          // SLUICE_BENCH_STAGGER: spread a wave's starts over one step
	batch      int           // SLUICE_BENCH_BATCH: Canaries created before waiting for them
	pause      time.Duration // SLUICE_BENCH_PAUSE: pause after each weight
	bystanders int           // SLUICE_BENCH_BYSTANDERS: unrelated Deployments
	flags      []string      // SLUICE_BENCH_FLAGS: extra controller flags
	memLimit   string        // SLUICE_BENCH_GOMEMLIMIT: the controller's GOMEMLIMIT (as the manifest's memory limit sets it)
	out        string        // SLUICE_BENCH_OUT: folder for the profiles
	router     benchRouter   // SLUICE_BENCH_ROUTER: gatewayapi (default), traefik, traefik-ingressroute, consul, ambassador
	// settle is the controller's route settle: its default, or the
	// --route-settle given in SLUICE_BENCH_FLAGS.
	settle time.Duration
}

// shapes are the two step lists Canaries get (even-numbered ones the
// first, odd ones the second): the writes a weight step costs are the
// difference between releases of 10 and of 5 weight steps, divided by 5,
// which takes out what a release costs whatever its steps (its start,
// the promotion, the record).
var shapes = [2][]int32{{10, 20, 30, 40, 50}, {5, 10, 15, 20, 25, 30, 35, 40, 45, 50}}

func readSettings(t *testing.T) settings {
	s := settings{idle: 60 * time.Second, progress: 0.1, pause: 5 * time.Second, stagger: true, batch: 500}
	raw := cmp(os.Getenv("SLUICE_BENCH_SIZES"), "100,1000")
	for _, f := range strings.Split(raw, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("SLUICE_BENCH_SIZES %q: want counts such as 100,1000,10000", raw)
		}
		s.sizes = append(s.sizes, n)
	}
	if !slices.IsSorted(s.sizes) {
		t.Fatalf("SLUICE_BENCH_SIZES %q: the sizes are cumulative, give them in increasing order", raw)
	}
	for env, d := range map[string]*time.Duration{"SLUICE_BENCH_IDLE": &s.idle, "SLUICE_BENCH_PAUSE": &s.pause} {
		if v := os.Getenv(env); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed <= 0 {
				t.Fatalf("%s %q: want a duration such as 60s", env, v)
			}
			*d = parsed
		}
	}
	if v := os.Getenv("SLUICE_BENCH_PROGRESS"); v != "" {
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || p < 0 || p > 1 {
			t.Fatalf("SLUICE_BENCH_PROGRESS %q: want a share between 0 and 1", v)
		}
		s.progress = p
	}
	if v := os.Getenv("SLUICE_BENCH_STAGGER"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			t.Fatalf("SLUICE_BENCH_STAGGER %q: want 1 (spread a wave's starts over one step) or 0 (all at the same moment)", v)
		}
		s.stagger = b
	}
	if v := os.Getenv("SLUICE_BENCH_BATCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("SLUICE_BENCH_BATCH %q: want a count of Canaries", v)
		}
		s.batch = n
	}
	if v := os.Getenv("SLUICE_BENCH_BYSTANDERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("SLUICE_BENCH_BYSTANDERS %q: want a count", v)
		}
		s.bystanders = n
	}
	br, err := benchRouterFrom()
	if err != nil {
		t.Fatal(err)
	}
	s.router = br
	s.flags = strings.Fields(os.Getenv("SLUICE_BENCH_FLAGS"))
	s.memLimit = os.Getenv("SLUICE_BENCH_GOMEMLIMIT")
	s.settle = controller.DefaultRouteSettle
	for _, f := range s.flags {
		if v, ok := strings.CutPrefix(f, "--route-settle="); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("SLUICE_BENCH_FLAGS %s: %v", f, err)
			}
			s.settle = d
		}
	}
	s.out = os.Getenv("SLUICE_BENCH_OUT")
	if s.out == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		s.out = filepath.Join(root, ".local", "bench")
	}
	if err := os.MkdirAll(s.out, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func objects(br benchRouter, ns, name, instance string, pause time.Duration, steps []int32) (*appsv1.Deployment, *v1alpha1.Canary) {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/" + name + ":1"}}},
			},
		},
	}
	var st []v1alpha1.Step
	for _, w := range steps {
		st = append(st, v1alpha1.Step{SetWeight: ptr.To(w)}, v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: pause}}})
	}
	c := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{controller.InstanceLabel: instance}},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: name},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			Router:    br.spec(name),
			Strategy:  v1alpha1.Strategy{Steps: st},
		},
	}
	if br.template != nil {
		br.template(d)
	}
	return d, c
}

// parallel runs fn for 0..n-1, 32 at a time, and returns the first error.
func parallel(n int, fn func(ctx context.Context, i int) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// ensureNodes adds kwok fake nodes until pods fit.
func ensureNodes(t *testing.T, cl client.Client, pods int) {
	t.Helper()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("512Gi"),
		corev1.ResourcePods:   *resource.NewQuantity(nodePods, resource.DecimalSI),
	}
	for i := 0; i < pods/nodePods+1; i++ {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels: map[string]string{"type": "kwok", "kubernetes.io/hostname": name,
					"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
			Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
		}
		if err := cl.Create(t.Context(), node); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create node %s: %v", name, err)
		}
	}
}

// wave is one release wave: Canaries of one step shape released at once.
type wave struct {
	steps          int
	released, done int
	badSeq         int
	took           time.Duration
	req            requestCounts
	cpu            float64
	lags           []time.Duration
	// means of the controller's timers over the wave
	queueWait, reconcile, write time.Duration
	// the apiserver's CPU seconds over the wave and its RSS at the end
	apiCPU, apiRSS float64
	// status changes seen between the first weight and the promotion,
	// per release counted
	stepStatus float64
}

// row is one size's figures.
type row struct {
	n, added  int
	init      time.Duration
	initCPU   float64 // controller CPU seconds to initialize the added Canaries
	rss, heap float64
	// idleRPS is reads and writes per second while idle; idleWatches
	// the informers' watch renewals (each informer re-opens its watch
	// every 5 to 10 minutes, whatever the number of Canaries).
	idleRPS, idleWatches float64
	waves                [2]wave // 5 and 10 weight steps
}

// TestScale creates Canaries up to each size, waits until all are
// Initialized, measures them idle, then releases a share of them at once
// and measures the releases.
func TestScale(t *testing.T) {
	if os.Getenv("SLUICE_BENCH") == "" {
		t.Skip("the scale benchmark runs with `make bench-scale` (SLUICE_BENCH=1)")
	}
	set := readSettings(t)
	ctrl.SetLogger(logr.Discard()) // the bench's own watches
	c := testenv.Get(t)
	if err := c.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	_ = gwv1.Install(scheme)
	cfg := *c.Config
	cfg.QPS, cfg.Burst = 500, 1000
	cl, err := client.New(&cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	largest := set.sizes[len(set.sizes)-1]
	// Until a Canary is Initialized both its Deployment and the primary
	// run a pod; a release runs the canary's again.
	ensureNodes(t, cl, 2*largest+largest/2)
	instance := fmt.Sprintf("bench-%d", os.Getpid())

	var namespaces []string
	newNamespace := func() string {
		ns := c.Namespace(t)
		namespaces = append(namespaces, ns)
		return ns
	}
	bystanders(t, cl, set.bystanders, newNamespace)

	p := startController(t, c, instance, set.memLimit, set.flags)
	// The metrics endpoint answers before the caches have listed what is
	// there (the bystanders' ConfigMaps, say): give them time.
	time.Sleep(15 * time.Second)
	base := p.sample(t)
	// Runs after the namespaces' deletion was asked for and before the
	// controller stops: nothing is left waiting on its finalizer.
	t.Cleanup(func() { dropFinalizers(cl, namespaces) })

	api, err := newAPIServer(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := newRecorder(t.Context(), &cfg, scheme, instance, set.router)
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	var keys []client.ObjectKey
	var canaryNS string
	for _, n := range set.sizes {
		start := time.Now()
		before := p.sample(t)
		from := len(keys)
		for i := from; i < n; i++ {
			if i%perNamespace == 0 {
				canaryNS = newNamespace()
			}
			keys = append(keys, client.ObjectKey{Namespace: canaryNS, Name: fmt.Sprintf("app-%05d", i)})
		}
		create(t, cl, rec, set, instance, keys, from)
		testenv.Eventually(t, 60*time.Minute, fmt.Sprintf("%d canaries Initialized", n), func(context.Context) error {
			// Initialized, or Succeeded when an earlier size released it.
			if done := rec.count(keys, v1alpha1.PhaseInitialized, v1alpha1.PhaseSucceeded); done < n {
				return fmt.Errorf("%d/%d Initialized", done, n)
			}
			return nil
		})
		r := row{n: n, added: n - from, init: time.Since(start)}
		settled := p.sample(t)
		r.initCPU = settled.cpu - before.cpu
		// Idle: nothing changes, so whatever the controller asks the
		// apiserver now, it asks for nothing.
		time.Sleep(set.idle)
		idle := p.sample(t)
		r.rss, r.heap = idle.rss, idle.heap
		idleReq := idle.since(settled)
		r.idleRPS = (idleReq.all - idleReq.watches) / idle.at.Sub(settled.at).Seconds()
		r.idleWatches = idleReq.watches
		if err := p.profile(t.Context(), "heap", filepath.Join(set.out, fmt.Sprintf("heap-%d.pb.gz", n))); err != nil {
			t.Errorf("heap profile: %v", err)
		}
		fmt.Printf("%s %d canaries: all Initialized after %s; idle RSS %.1f MiB, heap %.1f MiB, %.3f requests/s (and %.0f watch renewals)\n",
			time.Now().Format(time.TimeOnly), n, r.init.Round(time.Second), r.rss/(1<<20), r.heap/(1<<20), r.idleRPS, r.idleWatches)
		for shape := range shapes {
			w := release(t, cl, p, api, rec, set, keys, shape, len(rows), r.n)
			r.waves[shape] = w
			fmt.Printf("%s %d canaries: %d releases of %d steps promoted after %s; step lag p99 %s; per release: %.2f route, %.2f status, %.2f event, %.2f other writes, %.2f reads\n",
				time.Now().Format(time.TimeOnly), n, w.released, w.steps, w.took.Round(time.Second), percentile(w.lags, 0.99).Round(time.Millisecond),
				w.req.routeWrites/float64(max(w.released, 1)), w.req.statusWrites/float64(max(w.released, 1)), w.req.eventWrites/float64(max(w.released, 1)),
				w.req.otherWrites/float64(max(w.released, 1)), w.req.reads/float64(max(w.released, 1)))
		}
		rows = append(rows, r)
	}
	report(t, set, p, base, rows)
}

// create creates the Deployments and Canaries of keys[from:], a batch at
// a time: a batch is created once fewer than a batch of those created
// before it are still initializing, so the cluster, which shares the
// controller's cores, is never handed thousands of new Deployments at
// once (at 10,000 that left it thrashing for an hour).
func create(t *testing.T, cl client.Client, rec *recorder, set settings, instance string, keys []client.ObjectKey, from int) {
	t.Helper()
	for lo := from; lo < len(keys); lo += set.batch {
		hi := min(lo+set.batch, len(keys))
		testenv.Eventually(t, 30*time.Minute, fmt.Sprintf("fewer than %d of %d canaries initializing", set.batch, lo), func(context.Context) error {
			if busy := lo - rec.count(keys[:lo], v1alpha1.PhaseInitialized, v1alpha1.PhaseSucceeded); busy >= set.batch {
				return fmt.Errorf("%d initializing", busy)
			}
			return nil
		})
		if err := parallel(hi-lo, func(ctx context.Context, i int) error {
			k := keys[lo+i]
			d, cn := objects(set.router, k.Namespace, k.Name, instance, set.pause, shapes[(lo+i)%2])
			if set.router.user != nil {
				for _, o := range set.router.user(k.Namespace, k.Name) {
					if err := cl.Create(ctx, o); err != nil {
						return fmt.Errorf("create %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, k, err)
					}
				}
			}
			if err := cl.Create(ctx, d); err != nil {
				return fmt.Errorf("create deployment %s: %w", k, err)
			}
			if err := cl.Create(ctx, cn); err != nil {
				return fmt.Errorf("create canary %s: %w", k, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// release sets a new image on a share of the Canaries of one step shape
// at once, waits until they are all promoted, and records what it cost.
func release(t *testing.T, cl client.Client, p *controllerProc, api apiserver, rec *recorder, set settings, keys []client.ObjectKey, shape, size, n int) wave {
	t.Helper()
	// The Canaries of this shape, spread over the namespaces: every
	// stride-th one, shifted by the size so that no Canary released at an
	// earlier size is chosen again (while the stride allows).
	var mine []client.ObjectKey
	for i := shape; i < len(keys); i += len(shapes) {
		mine = append(mine, keys[i])
	}
	count := min(int(math.Round(float64(len(keys))*set.progress)), len(mine))
	w := wave{steps: len(shapes[shape]), released: count}
	if count == 0 {
		return w
	}
	var chosen []client.ObjectKey
	stride := len(mine) / count
	for i := 0; i < count; i++ {
		chosen = append(chosen, mine[i*stride+size%stride])
	}
	want := append(slices.Clone(shapes[shape]), 100)
	image := fmt.Sprintf(":%d", n)
	before := p.sample(t)
	apiBefore, _, err := api.usage(t.Context())
	if err != nil {
		t.Logf("apiserver CPU: %v", err)
	}
	start := time.Now()
	profileDone := make(chan error, 2)
	secs := int((time.Duration(len(want)) * (set.pause + set.settle)).Seconds())
	go func() {
		profileDone <- p.profile(context.Background(), fmt.Sprintf("profile?seconds=%d", secs),
			filepath.Join(set.out, fmt.Sprintf("cpu-release-%d-%dsteps.pb.gz", n, w.steps)))
	}()
	go func() {
		err := api.profile(context.Background(), fmt.Sprintf("profile?seconds=%d", secs),
			filepath.Join(set.out, fmt.Sprintf("apiserver-cpu-release-%d-%dsteps.pb.gz", n, w.steps)))
		if err != nil {
			err = fmt.Errorf("apiserver: %w", err)
		}
		profileDone <- err
	}()
	// Staggered, the starts are spread evenly over one step (the settle and
	// the pause): all of the wave is releasing at once, and its steps fall
	// due at an even rate, as releases started by people and pipelines do.
	// Unstaggered, every step of the wave falls due in the same instant.
	spread := time.Duration(0)
	if set.stagger {
		spread = set.settle + set.pause
	}
	if err := parallel(len(chosen), func(ctx context.Context, i int) error {
		if d := time.Until(start.Add(spread * time.Duration(i) / time.Duration(len(chosen)))); d > 0 {
			time.Sleep(d)
		}
		var d appsv1.Deployment
		if err := cl.Get(ctx, chosen[i], &d); err != nil {
			return err
		}
		patch := client.MergeFrom(d.DeepCopy())
		c := &d.Spec.Template.Spec.Containers[0]
		c.Image = c.Image[:strings.LastIndexByte(c.Image, ':')] + image
		return cl.Patch(ctx, &d, patch)
	}); err != nil {
		t.Fatalf("start releases: %v", err)
	}
	testenv.Eventually(t, 60*time.Minute, fmt.Sprintf("%d releases promoted", count), func(context.Context) error {
		lags, bad := rec.lags(chosen, start, want, set.settle+set.pause)
		if done := len(lags)/(len(want)-1) + bad; done < count {
			return fmt.Errorf("%d/%d releases through their steps", done, count)
		}
		if done := rec.count(chosen, v1alpha1.PhaseSucceeded); done < count {
			return fmt.Errorf("%d/%d Succeeded", done, count)
		}
		return nil
	})
	after := p.sample(t)
	w.took = time.Since(start)
	if apiAfter, rss, err := api.usage(t.Context()); err != nil {
		t.Logf("apiserver CPU: %v", err)
	} else {
		w.apiCPU, w.apiRSS = apiAfter-apiBefore, rss
	}
	w.done = rec.count(chosen, v1alpha1.PhaseSucceeded)
	w.lags, w.badSeq = rec.lags(chosen, start, want, set.settle+set.pause)
	if writes, counted := rec.stepStatusWrites(chosen, start, want); counted > 0 {
		w.stepStatus = float64(writes) / float64(counted)
	}
	w.req = after.since(before)
	w.cpu = after.cpu - before.cpu
	w.queueWait, w.reconcile, w.write = after.mean(before, queueWait), after.mean(before, reconcile), after.mean(before, writeTime)
	for range 2 {
		if err := <-profileDone; err != nil {
			t.Errorf("CPU profile: %v", err)
		}
	}
	return w
}

// bystanders creates n Deployments (0 replicas), Services and ConfigMaps
// that belong to no Canary: what a controller without label-filtered
// caches would hold anyway.
func bystanders(t *testing.T, cl client.Client, n int, newNamespace func() string) {
	t.Helper()
	if n == 0 {
		return
	}
	var nss []string
	for i := 0; i < n; i += perNamespace {
		nss = append(nss, newNamespace())
	}
	if err := parallel(n, func(ctx context.Context, i int) error {
		ns, name := nss[i/perNamespace], fmt.Sprintf("other-%05d", i)
		d, _ := objects(benchRouters()["gatewayapi"], ns, name, "", 0, nil)
		d.Spec.Replicas = ptr.To(int32(0))
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Port: 80}}}}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Data: map[string]string{"config.yaml": strings.Repeat("key: value\n", 50)}}
		for _, o := range []client.Object{d, svc, cm} {
			if err := cl.Create(ctx, o); err != nil {
				return fmt.Errorf("create bystander %s/%s: %w", ns, name, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func dropFinalizers(cl client.Client, namespaces []string) {
	for _, ns := range namespaces {
		var list v1alpha1.CanaryList
		if err := cl.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			continue
		}
		for i := range list.Items {
			it := &list.Items[i]
			patch := client.MergeFrom(it.DeepCopy())
			it.Finalizers = nil
			_ = cl.Patch(context.Background(), it, patch)
		}
	}
}

// perStepCost is what one weight step costs, per Canary.
type perStepCost struct {
	routeWrites, statusWrites, eventWrites, otherWrites, reads, cpu float64
	// watchedStatus is statusWrites measured from the bench's own watch,
	// over the steps alone (wave.stepStatus)
	watchedStatus float64
}

// perStep is the 10-step wave's cost per release minus the 5-step wave's,
// over the 5 steps between them.
func (r row) perStep() (perStepCost, bool) {
	a, b := r.waves[0], r.waves[1]
	if a.released == 0 || b.released == 0 {
		return perStepCost{}, false
	}
	d := float64(b.steps - a.steps)
	diff := func(x, y float64) float64 { return (y/float64(b.released) - x/float64(a.released)) / d }
	return perStepCost{
		routeWrites:  diff(a.req.routeWrites, b.req.routeWrites),
		statusWrites: diff(a.req.statusWrites, b.req.statusWrites),
		eventWrites:  diff(a.req.eventWrites, b.req.eventWrites),
		otherWrites:  diff(a.req.otherWrites, b.req.otherWrites),
		reads:        diff(a.req.reads, b.req.reads),
		cpu:          diff(a.cpu, b.cpu),
		// already per release
		watchedStatus: (b.stepStatus - a.stepStatus) / d,
	}, true
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func report(t *testing.T, set settings, p *controllerProc, base sample, rows []row) {
	var b strings.Builder
	mib := func(v float64) float64 { return v / (1 << 20) }
	fmt.Fprintf(&b, "\nscale benchmark: router %s; controller flags %s\n", set.router.name, strings.Join(p.flags, " "))
	if set.memLimit != "" {
		fmt.Fprintf(&b, "controller environment: GOMEMLIMIT=%s\n", set.memLimit)
	}
	fmt.Fprintf(&b, "idle window %s; releases: weights %v or %v then promotion, pause %s after each (route settle %s)\n",
		set.idle, shapes[0], shapes[1], set.pause, set.settle)
	fmt.Fprintf(&b, "before any Canary (%d bystander Deployments, Services and ConfigMaps in the cluster): RSS %.1f MiB, heap in use %.1f MiB\n\n",
		set.bystanders, mib(base.rss), mib(base.heap))

	fmt.Fprintf(&b, "| canaries | added, all Initialized after | CPU to initialize | RSS MiB | RSS KiB/canary | heap MiB | heap KiB/canary | API requests/s idle | watch renewals idle |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %d in %s | %.1f s (%.1f ms each) | %.1f | %.1f | %.1f | %.1f | %.3f | %.0f in %s |\n", r.n, r.added, r.init.Round(time.Second),
			r.initCPU, r.initCPU*1000/float64(r.added), mib(r.rss), (r.rss-base.rss)/1024/float64(r.n), mib(r.heap), (r.heap-base.heap)/1024/float64(r.n), r.idleRPS, r.idleWatches, set.idle)
	}
	starts := "all started at the same moment"
	if set.stagger {
		starts = fmt.Sprintf("starts spread evenly over %s", set.settle+set.pause)
	}
	fmt.Fprintf(&b, "\nreleases: waves of %.0f%% of the Canaries (%s); per release, then per weight step (10-step releases minus 5-step ones, over 5):\n\n", set.progress*100, starts)
	fmt.Fprintf(&b, "| canaries | steps | released at once | all promoted after | route writes | status writes | event writes | other writes | reads | CPU ms | step lag p50 | p99 | max |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		var all []time.Duration
		for _, w := range r.waves {
			if w.released == 0 {
				continue
			}
			all = append(all, w.lags...)
			n := float64(w.released)
			fmt.Fprintf(&b, "| %d | %d | %d | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %s | %s | %s |\n", r.n, w.steps, w.released, w.took.Round(time.Second),
				w.req.routeWrites/n, w.req.statusWrites/n, w.req.eventWrites/n, w.req.otherWrites/n, w.req.reads/n, w.cpu*1000/n,
				percentile(w.lags, 0.5).Round(time.Millisecond), percentile(w.lags, 0.99).Round(time.Millisecond), slices.Max(append(w.lags, 0)).Round(time.Millisecond))
			if w.badSeq > 0 || w.done < w.released {
				fmt.Fprintf(&b, "  (%d releases went through other weights than the steps'; %d of %d promoted)\n", w.badSeq, w.done, w.released)
			}
		}
		if ps, ok := r.perStep(); ok {
			fmt.Fprintf(&b, "| %d | per step | | | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %s | %s | %s |\n", r.n,
				ps.routeWrites, ps.statusWrites, ps.eventWrites, ps.otherWrites, ps.reads, ps.cpu*1000,
				percentile(all, 0.5).Round(time.Millisecond), percentile(all, 0.99).Round(time.Millisecond), slices.Max(append(all, 0)).Round(time.Millisecond))
		}
	}
	fmt.Fprintf(&b, "\nwhere a wave's time went (means over the wave, from the controller's histograms):\n\n")
	fmt.Fprintf(&b, "| canaries | steps | work queue wait | reconcile | apiserver write (create, patch) | controller CPU, cores | apiserver CPU, cores | apiserver RSS MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		for _, w := range r.waves {
			if w.released > 0 {
				secs := w.took.Seconds()
				fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %.2f | %.2f | %.0f |\n", r.n, w.steps,
					w.queueWait.Round(100*time.Microsecond), w.reconcile.Round(100*time.Microsecond), w.write.Round(100*time.Microsecond),
					w.cpu/secs, w.apiCPU/secs, mib(w.apiRSS))
			}
		}
	}
	for _, r := range rows {
		for _, w := range r.waves {
			if w.released == 0 {
				continue
			}
			keys := slices.Sorted(maps.Keys(w.req.byKey))
			fmt.Fprintf(&b, "\nrequests per %d-step release at %d canaries, by verb, resource and subresource:", w.steps, r.n)
			for _, k := range keys {
				fmt.Fprintf(&b, " %s %.2f;", strings.TrimSpace(k), w.req.byKey[k]/float64(w.released))
			}
		}
	}
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "\ntargets: at 10,000 <= 512 MiB RSS (<= 50 KiB per canary), 0 requests/s idle, <= 3 writes per step (the route, and the status twice: when the router carries it and when the step is done), step lag p99 < 1 s with 1,000 releasing\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	for _, r := range rows {
		perCanary := (r.rss - base.rss) / 1024 / float64(r.n)
		memory := "(the target is for 10,000)"
		if r.n >= 10000 {
			memory = verdict(perCanary <= 50 && r.rss <= 512<<20)
		}
		fmt.Fprintf(&b, "  at %d: memory %s (%.1f KiB RSS per canary; %.0f MiB in all); idle %s (%.3f requests/s besides watch renewals)", r.n,
			memory, perCanary, mib(r.rss), verdict(r.idleRPS == 0), r.idleRPS)
		if ps, ok := r.perStep(); ok {
			// The status writes of the steps alone, as the bench's watch
			// saw them: the controller's counters also hold the writes a
			// release makes before and after its steps, whose number
			// varies from wave to wave (about ±0.2 per step).
			writes := ps.routeWrites + ps.watchedStatus
			var all []time.Duration
			for _, w := range r.waves {
				all = append(all, w.lags...)
			}
			p99 := percentile(all, 0.99)
			fmt.Fprintf(&b, "; writes per step %s (%.2f route + %.2f status seen by the bench's watch over the steps alone; %.2f status from the controller's counters; %.2f events besides)",
				verdict(writes <= 3.05), ps.routeWrites, ps.watchedStatus, ps.statusWrites, ps.eventWrites)
			fmt.Fprintf(&b, "; step lag p99 %s (%s with %d releasing at once)", verdict(p99 < time.Second), p99.Round(time.Millisecond), max(r.waves[0].released, r.waves[1].released))
		}
		fmt.Fprintln(&b)
	}
	fmt.Fprintf(&b, "profiles: %s (heap-<N>.pb.gz after each idle window, cpu-release-<N>-<steps>steps.pb.gz and apiserver-cpu-release-<N>-<steps>steps.pb.gz during each release wave; go tool pprof <file>)\n", set.out)
	fmt.Print(b.String())
}
