package controller_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/routers"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// The controller under test runs in this process, built exactly as
// cmd/sluice builds it (same cache options, same reconciler), against the
// shared local control plane. One manager serves every test; each test
// works in its own namespace.
var (
	mgrOnce sync.Once
	// testMetrics are the in-process controller's metrics.
	testMetrics *controller.Metrics
	mgrErr      error
	direct      client.Client
	scheme      = newScheme()
	// mgrCache is the controller's cache, to check what it holds.
	mgrCache cache.Cache
)

func newScheme() *runtime.Scheme {
	s, err := controller.NewScheme()
	if err != nil {
		panic(err)
	}
	return s
}

// instanceID keeps this process's controller to the Canaries this process
// creates: other test processes (and the demo's controller) may run against
// the same cluster at the same time.
var instanceID = fmt.Sprintf("test-%d", os.Getpid())

// setup returns the cluster, a test namespace and an uncached client for
// assertions, starting the controller on first use.
func setup(t *testing.T) (*testenv.Cluster, string, client.Client) {
	t.Helper()
	c := testenv.Get(t)
	mgrOnce.Do(func() {
		ctrl.SetLogger(logr.Discard())
		if mgrErr = c.InstallSluiceCRDs(); mgrErr != nil {
			return
		}
		direct, mgrErr = client.New(c.Config, client.Options{Scheme: scheme})
		if mgrErr != nil {
			return
		}
		testMetrics = controller.NewMetrics()
		if mgrErr = testMetrics.Register(nil); mgrErr != nil {
			return
		}
		var mgr ctrl.Manager
		mgr, _, mgrErr = controller.NewManager(c.ControllerConfig(t), controller.ManagerConfig{
			Manager:    ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"},
			InstanceID: instanceID,
			MaxQueries: 8,
			Metrics:    testMetrics,
			TargetPoll: 2 * time.Second,
			Options:    controller.Options{Workers: 4},
			Routers:    routers.All(),
		})
		if mgrErr != nil {
			return
		}
		mgrCache = mgr.GetCache()
		go func() {
			if err := mgr.Start(context.Background()); err != nil {
				panic(fmt.Sprintf("manager stopped: %v", err))
			}
		}()
	})
	if mgrErr != nil || direct == nil {
		t.Fatalf("start controller: %v", mgrErr)
	}
	ns := c.Namespace(t)
	// Runs before the namespace is deleted (cleanups run last-in first-out):
	// Canaries carry a finalizer that this process's controller removes, so
	// they must go while it still runs.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := direct.DeleteAllOf(ctx, &v1alpha1.Canary{}, client.InNamespace(ns)); err != nil {
			t.Errorf("delete canaries in %s: %v", ns, err)
			return
		}
		for ctx.Err() == nil {
			var list v1alpha1.CanaryList
			if err := direct.List(ctx, &list, client.InNamespace(ns)); err == nil && len(list.Items) == 0 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("canaries in %s not finalized within 30s", ns)
	})
	return c, ns, direct
}

func app(ns, name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: image,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
}

func weightStep(w int32) v1alpha1.Step { return v1alpha1.Step{SetWeight: ptr.To(w)} }

func pauseStep(d time.Duration) v1alpha1.Step {
	return v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: d}}}
}

func untilPromoted() v1alpha1.Step { return v1alpha1.Step{Pause: &v1alpha1.PauseStep{}} }

func canary(ns, name string, steps ...v1alpha1.Step) *v1alpha1.Canary {
	return &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{controller.InstanceLabel: instanceID}},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: name},
			Service:   v1alpha1.ServiceSpec{Port: 80, TargetPort: "8080"},
			Router: v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{
				ParentRefs: []gwv1.ParentReference{{Name: "public"}},
				Hostnames:  []gwv1.Hostname{"app.example.com"},
			}},
			Strategy: v1alpha1.Strategy{Steps: steps},
		},
	}
}

func create(t *testing.T, cl client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cl.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func getCanary(ctx context.Context, cl client.Client, ns, name string) (*v1alpha1.Canary, error) {
	var c v1alpha1.Canary
	err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c)
	return &c, err
}

// waitPhase waits for the Canary to reach phase and returns it.
func waitPhase(t *testing.T, cl client.Client, ns, name string, phase v1alpha1.CanaryPhase, timeout time.Duration) *v1alpha1.Canary {
	t.Helper()
	var got *v1alpha1.Canary
	testenv.Eventually(t, timeout, fmt.Sprintf("canary %s/%s phase %s", ns, name, phase), func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		if c.Status.Phase != phase {
			return fmt.Errorf("phase %q (%s: %s)", c.Status.Phase, c.Status.Reason, c.Status.Message)
		}
		got = c
		return nil
	})
	return got
}

// routeSplit reads the generated HTTPRoute's backends: name -> weight.
func routeSplit(ctx context.Context, cl client.Client, ns, name string) (map[string]int32, error) {
	var r gwv1.HTTPRoute
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil {
		return nil, err
	}
	return splitOf(&r), nil
}

// routeShare reads the canary share of a version of the Canary's HTTPRoute.
func routeShare(name string) func(client.Object) (int32, bool) {
	return func(o client.Object) (int32, bool) {
		r, ok := o.(*gwv1.HTTPRoute)
		if !ok || len(r.Spec.Rules) == 0 {
			return 0, false
		}
		return canaryShare(splitOf(r), name), true
	}
}

// splitOf is the weight of each backend of the route's first rule.
func splitOf(r *gwv1.HTTPRoute) map[string]int32 {
	out := map[string]int32{}
	for _, ref := range r.Spec.Rules[0].BackendRefs {
		key := string(ref.Name)
		if ref.Namespace != nil {
			key = string(*ref.Namespace) + "/" + key
		}
		out[key] = ptr.Deref(ref.Weight, 1)
	}
	return out
}

// canaryShare is the canary Service's percent of a default two-backend route.
func canaryShare(split map[string]int32, svc string) int32 {
	total := int32(0)
	for _, w := range split {
		total += w
	}
	if total == 0 {
		return 0
	}
	return split[svc+"-canary"] * 100 / total
}

// setImage changes the target's image: a new revision.
func setImage(t *testing.T, cl client.Client, ns, name, image string) {
	t.Helper()
	var d appsv1.Deployment
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := cl.Patch(t.Context(), &d, patch); err != nil {
		t.Fatalf("set image of %s/%s: %v", ns, name, err)
	}
}

// request writes the sluice.dev/request annotation, as the CLI does.
func request(t *testing.T, cl client.Client, ns, name, action string) {
	t.Helper()
	c, err := getCanary(t.Context(), cl, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(c.DeepCopy())
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[v1alpha1.RequestAnnotation] = fmt.Sprintf("%s/%d", action, time.Now().UnixNano())
	if err := cl.Patch(t.Context(), c, patch); err != nil {
		t.Fatalf("request %s on %s/%s: %v", action, ns, name, err)
	}
}

func deployment(ctx context.Context, cl client.Client, ns, name string) (*appsv1.Deployment, error) {
	var d appsv1.Deployment
	err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d)
	return &d, err
}

func rawCanary(t *testing.T, js string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(js)); err != nil {
		t.Fatal(err)
	}
	return u
}

// inBackground runs fn every 20 ms (each call with a 5 s deadline) until
// the returned stop is called or the test ends; stop waits for it to finish.
func inBackground(t *testing.T, fn func(ctx context.Context)) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			fn(ctx)
			cancel()
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-done }) }
	t.Cleanup(stop)
	return stop
}

// countWhile samples cond in the background and returns a function that
// stops sampling and says in how many samples cond held.
func countWhile(t *testing.T, cond func(ctx context.Context) bool) func() int {
	var n atomic.Int32
	stop := inBackground(t, func(ctx context.Context) {
		if cond(ctx) {
			n.Add(1)
		}
	})
	return func() int {
		stop()
		return int(n.Load())
	}
}

// releaseToPausedStep takes a Canary just created, whose steps lead to a
// pause until promoted, through its first release: it waits for the
// Canary to be Initialized, releases example.com/<name>:2 and returns the
// Canary once the release waits for promotion.
func releaseToPausedStep(t *testing.T, cl client.Client, ns, name string) *v1alpha1.Canary {
	t.Helper()
	waitPhase(t, cl, ns, name, v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, name, "example.com/"+name+":2")
	return waitPhase(t, cl, ns, name, v1alpha1.PhaseWaitingPromotion, 60*time.Second)
}

// probeAction is a sluice.dev/request action the engine does not know: in
// any phase, it records the request in status.lastHandledRequest and
// otherwise ignores it (a RequestIgnored Warning Event). A probe recorded
// is a whole reconcile of the Canary as it stands.
const probeAction = "probe"

// holdsStill checks that a Canary does not move while its controller
// keeps deciding on it, with no sleep that a slow machine could make too
// short, nor a window in which nothing reconciled it: it writes rounds
// probe requests one after the other and, until each is recorded (within
// 30 s), samples the Canary every 100 ms. still says how a sample moved,
// nil when it did not; the first sample that moved fails the test. The
// sample that shows a probe recorded is checked too, so each round checks
// what a whole reconcile left.
func holdsStill(t *testing.T, cl client.Client, ns, name string, rounds int, still func(ctx context.Context, c *v1alpha1.Canary) error) {
	t.Helper()
	for i := 1; i <= rounds; i++ {
		request(t, cl, ns, name, probeAction)
		var moved error
		testenv.Eventually(t, 30*time.Second, fmt.Sprintf("probe %d of %d recorded by %s/%s", i, rounds, ns, name), func(ctx context.Context) error {
			c, err := getCanary(ctx, cl, ns, name)
			if err != nil {
				return err
			}
			if moved = still(ctx, c); moved != nil {
				return nil // the sampling ends here
			}
			if got, want := c.Status.LastHandledRequest, c.Annotations[v1alpha1.RequestAnnotation]; got != want {
				return fmt.Errorf("last handled request %q, want %q", got, want)
			}
			return nil
		})
		if moved != nil {
			t.Fatalf("%s/%s moved (probe %d of %d): %v", ns, name, i, rounds, moved)
		}
	}
}

// limitQuota creates a ResourceQuota allowing n of res in ns and waits
// until the controller-manager has counted its usage: the apiserver's
// quota admission refuses objects against it only from then on.
func limitQuota(t *testing.T, cl client.Client, ns, name string, res corev1.ResourceName, n string) *corev1.ResourceQuota {
	t.Helper()
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{res: resource.MustParse(n)}},
	}
	create(t, cl, quota)
	testenv.Eventually(t, 30*time.Second, "quota usage computed", func(ctx context.Context) error {
		var q corev1.ResourceQuota
		if err := cl.Get(ctx, client.ObjectKeyFromObject(quota), &q); err != nil {
			return err
		}
		if _, ok := q.Status.Used[res]; !ok {
			return fmt.Errorf("no usage of %s yet", res)
		}
		return nil
	})
	return quota
}

// stateRecorder records every version of one object through a watch (its
// deletion included), and gives the distinct states they carried in the
// order they were written: a state held for a moment (a weight step
// without a pause, a promotion's 100%) is never missed, however busy the
// machine is.
type stateRecorder[T comparable] struct {
	mu       sync.Mutex
	versions map[int64]T
	cancel   context.CancelFunc
	done     chan struct{}
	final    func()
}

// recordStates watches the object named name of list's kind in ns. state
// reads a version (obj nil: the object does not exist, or was deleted);
// false leaves the version out. newItem makes an empty object of the
// kind, for the reads that start and end the record.
func recordStates[T comparable](t *testing.T, list client.ObjectList, newItem func() client.Object, ns, name string, state func(obj client.Object) (T, bool)) *stateRecorder[T] {
	t.Helper()
	wcl, err := client.NewWithWatch(testenv.Get(t).Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	r := &stateRecorder[T]{versions: map[int64]T{}, done: make(chan struct{})}
	add := func(rvString string, o client.Object) {
		rv, err := strconv.ParseInt(rvString, 10, 64)
		if err != nil {
			return
		}
		if v, ok := state(o); ok {
			r.mu.Lock()
			r.versions[rv] = v
			r.mu.Unlock()
		}
	}
	// read records the object as it is now, or its absence at the
	// collection's resourceVersion.
	read := func(ctx context.Context) {
		o := newItem()
		err := wcl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o)
		switch {
		case err == nil:
			add(o.GetResourceVersion(), o)
		case apierrors.IsNotFound(err):
			l := list.DeepCopyObject().(client.ObjectList)
			if wcl.List(ctx, l, client.InNamespace(ns), client.MatchingFields{"metadata.name": name}) == nil && meta.LenList(l) == 0 {
				add(l.GetResourceVersion(), nil)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	start, cancelStart := context.WithTimeout(ctx, 5*time.Second)
	read(start)
	cancelStart()
	go func() {
		defer close(r.done)
		watchObject(ctx, wcl, list, ns, name, func(typ watch.EventType, o client.Object) {
			if typ == watch.Deleted {
				add(o.GetResourceVersion(), nil)
			} else {
				add(o.GetResourceVersion(), o)
			}
		})
	}()
	r.final = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		read(ctx)
	}
	t.Cleanup(r.stop)
	return r
}

func (r *stateRecorder[T]) stop() {
	r.cancel()
	<-r.done
}

// states stops the watch, reads the object once more (its end state),
// and returns the distinct states in the order they were written.
func (r *stateRecorder[T]) states() []T {
	r.stop()
	r.final()
	return r.sofar()
}

// sofar returns the distinct states recorded so far, in the order they
// were written, without stopping the watch.
func (r *stateRecorder[T]) sofar() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []T
	for _, rv := range slices.Sorted(maps.Keys(r.versions)) {
		if v := r.versions[rv]; len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// recordShares records the canary shares of one object (see
// recordStates); a deleted or missing object carries none.
func recordShares(t *testing.T, list client.ObjectList, newItem func() client.Object, ns, name string, share func(client.Object) (int32, bool)) *stateRecorder[int32] {
	return recordStates(t, list, newItem, ns, name, func(o client.Object) (int32, bool) {
		if o == nil {
			return 0, false
		}
		return share(o)
	})
}

// unstructuredKind is a list of gvk's kind and a maker of its items, for
// recordStates.
func unstructuredKind(gvk schema.GroupVersionKind) (*unstructured.UnstructuredList, func() client.Object) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	return list, func() client.Object {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		return u
	}
}

// weightOf reads a Mapping's spec.weight; -1 when it does not exist.
func weightOf(o client.Object) (int64, bool) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok || u == nil {
		return -1, true
	}
	w, _, _ := unstructured.NestedInt64(u.Object, "spec", "weight")
	return w, true
}

// watchObject calls fn with every event of the object named name of
// list's kind in ns until ctx ends. A watch that ends (a timeout, a
// restarted apiserver) is started again from the current state.
func watchObject(ctx context.Context, wcl client.WithWatch, list client.ObjectList, ns, name string, fn func(watch.EventType, client.Object)) {
	for ctx.Err() == nil {
		w, err := wcl.Watch(ctx, list, client.InNamespace(ns), client.MatchingFields{"metadata.name": name})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		for ev := range w.ResultChan() {
			if o, ok := ev.Object.(client.Object); ok {
				fn(ev.Type, o)
			}
		}
		w.Stop()
	}
}
