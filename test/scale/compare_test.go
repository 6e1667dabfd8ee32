package scale

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/kubeapi"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// The peer benchmark (`make bench-compare`): Sluice, Flagger and Argo
// Rollouts, each alone on a fresh bench cluster (the make target starts
// one per tool), doing the same work: N Deployments with TraefikService
// routing and releases of 5 weight steps of 10 s with no metric checks,
// idle, then a tenth of them released at once. Each tool runs as its own
// process with its own identity, so the apiserver's audit log attributes
// its requests; its CPU and memory are read from /proc. Results go to
// $SLUICE_BENCH_OUT/compare-<tool>.json; TestCompareReport puts the three
// side by side.

// compareWeights are the releases' weight steps; comparePause each step's
// nominal time.
var compareWeights = []int32{10, 20, 30, 40, 50}

const comparePause = 10 * time.Second

// peer is one tool under comparison.
type peer struct {
	name, user string
	// crds are its CRD files; start runs it with kubeconfig.
	crds  func(t *testing.T, root string) []string
	start func(t *testing.T, root, kubeconfig string) *exec.Cmd
	// kind is the object a user creates per app, and route the
	// TraefikService kind it writes weights to.
	kind, route schema.GroupVersionKind
	// objects are what a user creates for one app (its Deployment first).
	objects func(ns, name string) []client.Object
	// settled says, from the object's status, that an app is ready to be
	// released, or done releasing and promoted: a release is promoted
	// once its app is settled again after it was seen unsettled.
	settled func(u *unstructured.Unstructured) bool
}

func deploymentFor(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/" + name + ":1"}}},
			},
		},
	}
}

// rolledOut says a Deployment's rollout is over: its status is of its
// current generation, and every pod it has is updated and available.
func rolledOut(u *unstructured.Unstructured) bool {
	var d appsv1.Deployment
	if runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d) != nil || d.Status.ObservedGeneration < d.Generation {
		return false
	}
	want := ptr.Deref(d.Spec.Replicas, 1)
	return d.Status.Replicas == want && d.Status.UpdatedReplicas == want && d.Status.AvailableReplicas == want
}

func phaseOf(u *unstructured.Unstructured) string {
	p, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	return p
}

func unstructuredOf(gvk schema.GroupVersionKind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// buildBin is a binary make bench-compare built (hack/peers.sh).
func buildBin(t *testing.T, root, name string) string {
	p := filepath.Join(root, "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: make bench-compare builds it (bash hack/peers.sh build)", p)
	}
	return p
}

func peerCRDs(t *testing.T, root, peer string) []string {
	out, err := exec.Command("bash", filepath.Join(root, "hack", "peers.sh"), "crds", peer).Output()
	if err != nil {
		t.Fatalf("hack/peers.sh crds %s: %v", peer, err)
	}
	return strings.Fields(string(out))
}

func peers(instance string) map[string]peer {
	traefikService := schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "TraefikService"}
	succeeded := func(u *unstructured.Unstructured) bool {
		p := phaseOf(u)
		return p == "Initialized" || p == "Succeeded"
	}
	var steps []v1alpha1.Step
	var argoSteps []any
	var flaggerWeights []any
	for _, w := range compareWeights {
		// A Sluice step is the route settle (the proxy's time to load the
		// weight, which Sluice waits for and the peers do not) and then
		// the pause: 10 s in all, like the peers' steps.
		steps = append(steps, v1alpha1.Step{SetWeight: ptr.To(w)},
			v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: comparePause - controller.DefaultRouteSettle}}})
		argoSteps = append(argoSteps, map[string]any{"setWeight": int64(w)}, map[string]any{"pause": map[string]any{"duration": comparePause.String()}})
		flaggerWeights = append(flaggerWeights, int64(w))
	}
	sluice := peer{
		name: "Sluice (this commit)", user: "sluice",
		crds: func(_ *testing.T, root string) []string {
			files, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
			return files
		},
		start: func(t *testing.T, root, kubeconfig string) *exec.Cmd {
			bin := filepath.Join(t.TempDir(), "sluice")
			build := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
			build.Dir = root
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build sluice: %v\n%s", err, out)
			}
			return exec.Command(bin, "--kubeconfig", kubeconfig, "--instance-id", instance,
				"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
		},
		kind:  v1alpha1.GroupVersion.WithKind("Canary"),
		route: traefikService,
		objects: func(ns, name string) []client.Object {
			c := &v1alpha1.Canary{
				TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Canary"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{controller.InstanceLabel: instance}},
				Spec: v1alpha1.CanarySpec{
					TargetRef: v1alpha1.TargetRef{Name: name}, Service: v1alpha1.ServiceSpec{Port: 80},
					Router:   v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{}},
					Strategy: v1alpha1.Strategy{Steps: steps},
				},
			}
			return []client.Object{deploymentFor(ns, name), c}
		},
		settled: succeeded,
	}
	// sluice-base is Sluice built from another commit
	// (SLUICE_COMPARE_BASE), with that commit's CRDs: the same work before
	// and after a change, in one `make bench-compare`.
	base := sluice
	base.name = "Sluice at " + os.Getenv("SLUICE_COMPARE_BASE")
	base.crds = func(t *testing.T, root string) []string {
		files, _ := filepath.Glob(filepath.Join(baseTree(t, root), "config", "crd", "bases", "*.yaml"))
		return files
	}
	base.start = func(t *testing.T, root, kubeconfig string) *exec.Cmd {
		return sluice.start(t, baseTree(t, root), kubeconfig)
	}
	// rollout is no tool at all: each release is one plain rollout of the
	// Deployment (one new pod, the old one deleted), the floor under what
	// any tool's release costs the apiserver. Sluice's and Flagger's
	// releases roll two pods (the canary, then the primary), Argo's one.
	rollout := peer{
		name: "Deployments alone", user: "sluice", // its identity, unused: the audit log counts nothing
		crds: sluice.crds,
		start: func(*testing.T, string, string) *exec.Cmd {
			return exec.Command("sleep", "infinity")
		},
		kind:  appsv1.SchemeGroupVersion.WithKind("Deployment"),
		route: traefikService,
		objects: func(ns, name string) []client.Object {
			return []client.Object{deploymentFor(ns, name)}
		},
		settled: rolledOut,
	}
	return map[string]peer{
		"sluice":      sluice,
		"sluice-base": base,
		"rollout":     rollout,
		"flagger": {
			name: "Flagger v1.41.0", user: "flagger",
			crds: func(t *testing.T, root string) []string { return peerCRDs(t, root, "flagger") },
			start: func(t *testing.T, root, kubeconfig string) *exec.Cmd {
				// Its defaults, but Traefik, no Prometheus (no metric checks,
				// so it is never asked), info logs (the binary's default is
				// debug; its chart's is info) and a free port.
				return exec.Command(buildBin(t, root, "flagger"), "-kubeconfig", kubeconfig, "-mesh-provider=traefik",
					"-metrics-server=http://127.0.0.1:9", "-log-level=info", "-port=18097")
			},
			kind: schema.GroupVersionKind{Group: "flagger.app", Version: "v1beta1", Kind: "Canary"},
			// Flagger v1.41.0 writes the old Traefik group.
			route: schema.GroupVersionKind{Group: "traefik.containo.us", Version: "v1alpha1", Kind: "TraefikService"},
			objects: func(ns, name string) []client.Object {
				c := unstructuredOf(schema.GroupVersionKind{Group: "flagger.app", Version: "v1beta1", Kind: "Canary"}, ns, name, map[string]any{
					"provider":  "traefik",
					"targetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
					"service":   map[string]any{"port": int64(80)},
					"analysis":  map[string]any{"interval": comparePause.String(), "threshold": int64(1), "stepWeights": flaggerWeights},
				})
				return []client.Object{deploymentFor(ns, name), c}
			},
			settled: succeeded,
		},
		"argo-rollouts": {
			name: "Argo Rollouts v1.10.1", user: "argo-rollouts",
			crds: func(t *testing.T, root string) []string { return peerCRDs(t, root, "argo-rollouts") },
			start: func(t *testing.T, root, kubeconfig string) *exec.Cmd {
				// Its defaults, without leader election (one replica) and on
				// free ports.
				return exec.Command(buildBin(t, root, "rollouts-controller"), "--kubeconfig", kubeconfig, "--leader-elect=false",
					"--metricsPort=18098", "--healthzPort=18099", "--loglevel=warn")
			},
			kind:  schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"},
			route: traefikService,
			objects: func(ns, name string) []client.Object {
				svc := func(suffix string) *corev1.Service {
					return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name + suffix, Namespace: ns},
						Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
							Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
				}
				ts := unstructuredOf(traefikService, ns, name, map[string]any{"weighted": map[string]any{"services": []any{
					map[string]any{"name": name + "-stable", "port": int64(80), "weight": int64(100)},
					map[string]any{"name": name + "-canary", "port": int64(80), "weight": int64(0)},
				}}})
				ro := unstructuredOf(schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"}, ns, name, map[string]any{
					"replicas":    int64(1),
					"workloadRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "scaleDown": "onsuccess"},
					"strategy": map[string]any{"canary": map[string]any{
						"stableService": name + "-stable", "canaryService": name + "-canary",
						"trafficRouting": map[string]any{"traefik": map[string]any{"weightedTraefikServiceName": name}},
						"steps":          argoSteps,
					}},
				})
				return []client.Object{deploymentFor(ns, name), svc("-stable"), svc("-canary"), ts, ro}
			},
			settled: func(u *unstructured.Unstructured) bool {
				stable, _, _ := unstructured.NestedString(u.Object, "status", "stableRS")
				current, _, _ := unstructured.NestedString(u.Object, "status", "currentPodHash")
				return phaseOf(u) == "Healthy" && stable != "" && stable == current
			},
		},
	}
}

// baseTree is the tree of commit SLUICE_COMPARE_BASE, extracted once per
// test binary into a git-ignored folder of the repository (so its build
// shares the module cache and build cache).
func baseTree(t *testing.T, root string) string {
	ref := os.Getenv("SLUICE_COMPARE_BASE")
	if ref == "" {
		t.Fatal("sluice-base needs SLUICE_COMPARE_BASE: the commit to compare this one with")
	}
	out, err := exec.Command("git", "-C", root, "rev-parse", "--verify", ref+"^{commit}").Output()
	if err != nil {
		t.Fatalf("SLUICE_COMPARE_BASE=%s: not a commit: %v", ref, err)
	}
	commit := strings.TrimSpace(string(out))
	dir := filepath.Join(root, "bin", "compare-base", commit)
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("git", "-C", root, "archive", commit)
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v", commit, err)
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("untar %s: %v", commit, err)
	}
	return dir
}

// peerRecorder watches the tool's objects and its TraefikServices: each
// app's object as last seen, and the canary weights with when they were
// seen.
type peerRecorder struct {
	mu      sync.Mutex
	settled func(*unstructured.Unstructured) bool
	objects map[client.ObjectKey]*unstructured.Unstructured
	// left is when each app was last seen unsettled; promoting when it
	// was last seen entering a Promoting phase (Sluice's and Flagger's
	// decision to promote, before the primary takes the new revision).
	left, promoting map[client.ObjectKey]time.Time
	weights         map[client.ObjectKey][]weightAt
	// pods are each app's pods by name, as their image; gone is when a
	// pod of each image was last seen going (terminating or deleted).
	pods map[client.ObjectKey]map[string]string
	gone map[client.ObjectKey]map[string]time.Time
}

// appOfPod is the app a pod serves: its app label, without the
// "-primary" Sluice and Flagger give their primaries' labels.
func appOfPod(p *corev1.Pod) client.ObjectKey {
	return client.ObjectKey{Namespace: p.Namespace, Name: strings.TrimSuffix(p.Labels["app"], "-primary")}
}

// slimPod keeps of a pod what the recorder reads.
func slimPod(o any) (any, error) {
	p, ok := o.(*corev1.Pod)
	if !ok {
		return o, nil
	}
	out := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: map[string]string{"app": p.Labels["app"]},
		DeletionTimestamp: p.DeletionTimestamp, ResourceVersion: p.ResourceVersion}}
	for _, c := range p.Spec.Containers {
		out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	return out, nil
}

func newPeerRecorder(ctx context.Context, cfg *rest.Config, p peer) (*peerRecorder, error) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{&corev1.Pod{}: {Transform: slimPod}}})
	if err != nil {
		return nil, err
	}
	r := &peerRecorder{settled: p.settled, objects: map[client.ObjectKey]*unstructured.Unstructured{},
		left: map[client.ObjectKey]time.Time{}, promoting: map[client.ObjectKey]time.Time{}, weights: map[client.ObjectKey][]weightAt{},
		pods: map[client.ObjectKey]map[string]string{}, gone: map[client.ObjectKey]map[string]time.Time{}}
	pods, err := c.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return nil, err
	}
	podSeen := func(o any) {
		pod, ok := o.(*corev1.Pod)
		if !ok || len(pod.Spec.Containers) == 0 {
			return
		}
		k := appOfPod(pod)
		r.mu.Lock()
		defer r.mu.Unlock()
		if pod.DeletionTimestamp != nil {
			r.podGone(k, pod.Name, time.Now())
			return
		}
		if r.pods[k] == nil {
			r.pods[k] = map[string]string{}
		}
		r.pods[k][pod.Name] = pod.Spec.Containers[0].Image
	}
	podDeleted := func(o any) {
		if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		if pod, ok := o.(*corev1.Pod); ok {
			r.mu.Lock()
			r.podGone(appOfPod(pod), pod.Name, time.Now())
			r.mu.Unlock()
		}
	}
	if _, err := pods.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: podSeen, UpdateFunc: func(_, o any) { podSeen(o) }, DeleteFunc: podDeleted}); err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(p.kind)
	objs, err := c.GetInformer(ctx, obj)
	if err != nil {
		return nil, err
	}
	keep := func(o any) {
		if u, ok := o.(*unstructured.Unstructured); ok {
			now := time.Now()
			r.mu.Lock()
			k := client.ObjectKeyFromObject(u)
			if prev := r.objects[k]; phaseOf(u) == "Promoting" && (prev == nil || phaseOf(prev) != "Promoting") {
				r.promoting[k] = now
			}
			r.objects[k] = u
			if !r.settled(u) {
				r.left[k] = now
			}
			r.mu.Unlock()
		}
	}
	if _, err := objs.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: keep, UpdateFunc: func(_, o any) { keep(o) }}); err != nil {
		return nil, err
	}
	route := &unstructured.Unstructured{}
	route.SetGroupVersionKind(p.route)
	routes, err := c.GetInformer(ctx, route)
	if err != nil {
		return nil, err
	}
	weigh := func(o any) {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return
		}
		now := time.Now()
		s, found, _ := unstructured.NestedSlice(u.Object, "spec", "weighted", "services")
		if !found {
			return
		}
		share := testenv.Share(s, "weight", u.GetName()+"-canary")
		key := client.ObjectKeyFromObject(u)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.weights[key] = addWeight(r.weights[key], share, now)
	}
	if _, err := routes.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: weigh, UpdateFunc: func(_, o any) { weigh(o) }}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("bench cache did not sync")
	}
	return r, nil
}

func (r *peerRecorder) count(keys []client.ObjectKey, ok func(*unstructured.Unstructured) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range keys {
		if u := r.objects[k]; u != nil && ok(u) {
			n++
		}
	}
	return n
}

// promoted says whether k's release started at since is promoted: settled
// again after it was seen unsettled.
func (r *peerRecorder) promoted(k client.ObjectKey, since time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.objects[k]
	return u != nil && r.settled(u) && r.left[k].After(since)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// podGone records that app k's pod name is going. r.mu is held.
func (r *peerRecorder) podGone(k client.ObjectKey, name string, at time.Time) {
	image, ok := r.pods[k][name]
	if !ok {
		return
	}
	delete(r.pods[k], name)
	if r.gone[k] == nil {
		r.gone[k] = map[string]time.Time{}
	}
	r.gone[k][image] = at
}

// oldGone is when app k's last pod of image was seen going, if none of
// its pods runs image any more.
func (r *peerRecorder) oldGone(k client.ObjectKey, image string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, img := range r.pods[k] {
		if img == image {
			return time.Time{}, false
		}
	}
	at, ok := r.gone[k][image]
	return at, ok
}

// decided is when k's release started at since was seen entering its
// Promoting phase, if it was.
func (r *peerRecorder) decided(k client.ObjectKey, since time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.promoting[k]
	return at, ok && at.After(since)
}

// stepTimes are, per release of keys started at since, when each step's
// weight was first seen; releases that did not show every step are left
// out (and counted in missing).
func (r *peerRecorder) stepTimes(keys []client.ObjectKey, since time.Time) (times [][]time.Time, missing int) {
	for _, k := range keys {
		at := r.reached(k, since)
		if len(at) < len(compareWeights) {
			missing++
			continue
		}
		times = append(times, at)
	}
	return times, missing
}

// reached is when a release's route was seen at each of its weights in
// turn since its start, as far as it got.
func (r *peerRecorder) reached(k client.ObjectKey, since time.Time) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var at []time.Time
	for _, w := range r.weights[k] {
		if w.at.After(since) && len(at) < len(compareWeights) && w.weight == compareWeights[len(at)] {
			at = append(at, w.at)
		}
	}
	return at
}

// proc reads a process's CPU seconds and resident memory from /proc.
func proc(pid int) (cpu, rss float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command's closing parenthesis: utime and stime are
	// the 12th and 13th of them (clock ticks, 100 per second here).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	pages, _ := strconv.ParseFloat(f[21], 64)
	return (ut + st) / 100, pages * float64(os.Getpagesize()), nil
}

// audit reads the apiserver's audit log (Metadata level, the audited users
// only) between two offsets: requests by user and "verb resource[/sub]".
type audit struct{ path string }

type auditEvent struct {
	AuditID   string                    `json:"auditID"`
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef *struct {
		Resource, Subresource, APIGroup string
	} `json:"objectRef"`
}

func (a audit) offset() int64 {
	fi, err := os.Stat(a.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// since counts the user's requests logged after offset from.
func (a audit) since(from int64, user string) (map[string]float64, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.User.Username != user || seen[e.AuditID] {
			continue
		}
		seen[e.AuditID] = true // a watch logs when it starts and when it ends
		key := e.Verb
		if r := e.ObjectRef; r != nil {
			res := r.Resource
			if r.APIGroup != "" {
				res += "." + r.APIGroup
			}
			if r.Subresource != "" {
				res += "/" + r.Subresource
			}
			key += " " + res
		}
		out[key]++
	}
	return out, sc.Err()
}

// quiet waits until the user wrote nothing to the apiserver for a whole
// window, up to limit.
func quiet(log audit, user string, window, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		off := log.offset()
		time.Sleep(window)
		got, err := log.since(off, user)
		if err != nil {
			return err
		}
		if total(got, kubeapi.IsWrite) == 0 {
			return nil
		}
	}
	return fmt.Errorf("still writing after %s", limit)
}

func total(m map[string]float64, keep func(verb string) bool) float64 {
	n := 0.0
	for k, v := range m {
		if keep(strings.SplitN(k, " ", 2)[0]) {
			n += v
		}
	}
	return n
}

// compareRow is one tool at one size.
type compareRow struct {
	Tool, Name string
	N          int
	// Initialized: all apps ready after; RSS after init and after the
	// wave (MiB); CPU (cores) idle and CPU seconds in the wave.
	InitSeconds                        float64
	RSSInit, RSSWave                   float64
	IdleCores, WaveCPU                 float64
	IdleRequestsPerSec                 float64 // the tool's, watches left out
	IdleWatches                        float64
	Released, Promoted                 int
	WaveSeconds                        float64 // image change of the first to the last promoted
	PromoteP50, PromoteP99, PromoteMax float64 // seconds from a release's image change to its promotion
	DecideP50, DecideP99               float64 // the same to the tool's decision to promote (its Promoting phase; Argo's promotion)
	DoneP50, DoneP99                   float64 // the same to the later of the promotion and the last pod of the old image going
	Done                               int     // releases whose old pods were all gone within 2 minutes of the last promotion
	LagP50, LagP99, LagMax             float64 // seconds a step's weight came after the previous step's plus 10 s
	FirstStepP50                       float64 // seconds from the image change to the first weight
	WaveRequests                       float64 // the tool's requests in the wave, watches left out
	WaveRequestsByKey                  map[string]float64
	APIServerCPU                       float64 // apiserver CPU seconds in the wave, from the first image change to the end of the done wait
	APIServerIdleCores                 float64 // the apiserver's CPU (cores) in the idle window before the wave
	APIServerWindow                    float64 // seconds APIServerCPU was read over
	StepsMissing                       int     // releases whose route did not show every step
	StepsReached                       []int   // releases by the number of weights their route was seen at (0 to all)
	// Ready: apps ready when the size was measured; FellOver, when not
	// all of them were within SLUICE_COMPARE_INIT_LIMIT, says how far
	// the tool got (no wave is run then).
	Ready    int
	FellOver string
	ReadyAt  []readyCount // every 5 minutes of the initialisation
}

// readyCount is how far an initialisation had got after Seconds: the apps
// created, and those of them ready.
type readyCount struct {
	Seconds        float64
	Ready, Created int
}

// TestCompare runs one tool (SLUICE_COMPARE_TOOL) on the bench cluster.
func TestCompare(t *testing.T) {
	name := os.Getenv("SLUICE_COMPARE_TOOL")
	if os.Getenv("SLUICE_BENCH") == "" || name == "" {
		t.Skip("the peer benchmark runs with `make bench-compare`")
	}
	ctrl.SetLogger(logr.Discard())
	c := testenv.Get(t)
	instance := fmt.Sprintf("compare-%d", os.Getpid())
	p, ok := peers(instance)[name]
	if !ok {
		t.Fatalf("SLUICE_COMPARE_TOOL=%s: sluice, sluice-base, flagger, argo-rollouts or rollout (no tool: plain Deployment rollouts)", name)
	}
	set := readSettings(t)
	// Every tool's CRDs in every run: the apiserver serves the same.
	var files []string
	for tool, q := range peers(instance) {
		// Sluice's CRDs once: those of the build that runs.
		if (tool == "sluice-base" && name != tool) || (tool == "sluice" && name == "sluice-base") || tool == "rollout" {
			continue
		}
		files = append(files, q.crds(t, c.Root)...)
	}
	if err := c.InstallCRDFiles(files); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	cfg := *c.Config
	cfg.QPS, cfg.Burst = 500, 1000
	cl, err := client.New(&cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	largest := set.sizes[len(set.sizes)-1]
	ensureNodes(t, cl, 2*largest+largest/2)

	dir := filepath.Dir(c.Kubeconfig)
	kubeconfig := filepath.Join(dir, "kubeconfig-"+p.user)
	if _, err := clientcmd.LoadFromFile(kubeconfig); err != nil {
		t.Fatalf("%s: the bench cluster gives each tool its identity (localcluster up --audited-users): %v", kubeconfig, err)
	}
	log := audit{path: filepath.Join(dir, "logs", "audit.log")}
	cmd := p.start(t, c.Root, kubeconfig)
	logFile, err := os.Create(filepath.Join(set.out, "compare-"+name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited; logFile.Close() })
	pid := cmd.Process.Pid
	alive := func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("%s exited: %v (its log: %s)", name, err, logFile.Name())
		default:
			return nil
		}
	}
	rec, err := newPeerRecorder(t.Context(), &cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	initLimit := 120 * time.Minute
	if v := os.Getenv("SLUICE_COMPARE_INIT_LIMIT"); v != "" {
		if initLimit, err = time.ParseDuration(v); err != nil {
			t.Fatalf("SLUICE_COMPARE_INIT_LIMIT %q: want a duration such as 45m: %v", v, err)
		}
	}
	var namespaces []string
	var keys []client.ObjectKey
	var rows []compareRow
	var ns string
	save := func() {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(set.out, "compare-"+name+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
sizes:
	for _, n := range set.sizes {
		start := time.Now()
		initDeadline := start.Add(initLimit)
		var readyAt []readyCount
		// fellOver records a size whose apps were not all ready within
		// the init limit, and what the tool had done by then.
		fellOver := func(ready int, why error) {
			r := compareRow{Tool: name, Name: p.name, N: n, InitSeconds: time.Since(start).Seconds(), Ready: ready, ReadyAt: readyAt,
				FellOver: fmt.Sprintf("%d of %d apps ready after %s: %v", ready, n, time.Since(start).Round(time.Second), why)}
			if _, rss, err := proc(pid); err == nil {
				r.RSSInit = rss / (1 << 20)
			}
			rows = append(rows, r)
			save()
			t.Logf("%s fell over at %d: %s; larger sizes skipped", name, n, r.FellOver)
		}
		// progress notes, every 5 minutes of the initialisation, how many
		// apps are ready: where a tool slows down as it grows.
		lastNote := start
		progress := func(created int) {
			if time.Since(lastNote) < 5*time.Minute {
				return
			}
			lastNote = time.Now()
			rc := readyCount{Seconds: time.Since(start).Seconds(), Ready: rec.count(keys, p.settled), Created: created}
			readyAt = append(readyAt, rc)
			fmt.Printf("%s %s at %d: %d ready after %.0fs\n", time.Now().Format(time.TimeOnly), name, n, rc.Ready, rc.Seconds)
		}
		from := len(keys)
		for i := from; i < n; i++ {
			if i%perNamespace == 0 {
				ns = c.Namespace(t)
				namespaces = append(namespaces, ns)
			}
			keys = append(keys, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("app-%05d", i)})
		}
		for lo := from; lo < len(keys); lo += set.batch {
			hi := min(lo+set.batch, len(keys))
			if err := testenv.Poll(time.Until(initDeadline), func(context.Context) error {
				if err := alive(); err != nil {
					t.Fatal(err)
				}
				progress(lo)
				if busy := lo - rec.count(keys[:lo], p.settled); busy >= set.batch {
					return fmt.Errorf("%d of the %d apps created still initializing", busy, lo)
				}
				return nil
			}); err != nil {
				fellOver(rec.count(keys, p.settled), err)
				break sizes
			}
			if err := parallel(hi-lo, func(ctx context.Context, i int) error {
				k := keys[lo+i]
				for _, o := range p.objects(k.Namespace, k.Name) {
					if err := cl.Create(ctx, o); err != nil {
						return fmt.Errorf("create %T %s: %w", o, k, err)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := testenv.Poll(time.Until(initDeadline), func(context.Context) error {
			if err := alive(); err != nil {
				t.Fatal(err)
			}
			progress(len(keys))
			if done := rec.count(keys, p.settled); done < n {
				return fmt.Errorf("%d/%d ready", done, n)
			}
			return nil
		}); err != nil {
			fellOver(rec.count(keys, p.settled), err)
			break
		}
		r := compareRow{Tool: name, Name: p.name, N: n, InitSeconds: time.Since(start).Seconds(), Ready: n, ReadyAt: readyAt}
		// Ready by its status is not done: the tool may still be scaling
		// down Deployments or writing Events. Idle starts once it wrote
		// nothing for 10 s (Flagger never stops writing Events: then after
		// 5 minutes).
		if err := quiet(log, p.user, 10*time.Second, 5*time.Minute); err != nil {
			t.Logf("%s at %d: %v", name, n, err)
		}
		cpu0, rss, err := proc(pid)
		if err != nil {
			t.Fatal(err)
		}
		r.RSSInit = rss / (1 << 20)
		api, err := newAPIServer(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		apiIdle0, _, _ := api.usage(t.Context())
		off, t0 := log.offset(), time.Now()
		time.Sleep(set.idle)
		cpu1, _, _ := proc(pid)
		apiIdle1, _, _ := api.usage(t.Context())
		idleReq, err := log.since(off, p.user)
		if err != nil {
			t.Fatalf("audit log: %v", err)
		}
		secs := time.Since(t0).Seconds()
		r.IdleCores = (cpu1 - cpu0) / secs
		r.APIServerIdleCores = (apiIdle1 - apiIdle0) / secs
		r.IdleRequestsPerSec = total(idleReq, func(v string) bool { return v != "watch" }) / secs
		r.IdleWatches = total(idleReq, func(v string) bool { return v == "watch" })
		fmt.Printf("%s %s at %d: ready after %.0fs; RSS %.1f MiB; idle %.3f cores, %.2f requests/s (%v); apiserver idle %.3f cores\n",
			time.Now().Format(time.TimeOnly), name, n, r.InitSeconds, r.RSSInit, r.IdleCores, r.IdleRequestsPerSec, idleReq, r.APIServerIdleCores)

		// The wave: a tenth of the apps (all of them below 10), spread over
		// the namespaces, released at once.
		count := max(1, int(math.Round(float64(n)*set.progress)))
		stride := n / count
		var chosen []client.ObjectKey
		for i := 0; i < count; i++ {
			chosen = append(chosen, keys[i*stride+len(rows)%stride])
		}
		apiCPU0, _, _ := api.usage(t.Context())
		cpu0, _, _ = proc(pid)
		off = log.offset()
		waveStart := time.Now()
		var mu sync.Mutex
		changed := map[client.ObjectKey]time.Time{}
		oldImage := map[client.ObjectKey]string{}
		if err := parallel(len(chosen), func(ctx context.Context, i int) error {
			var d appsv1.Deployment
			if err := cl.Get(ctx, chosen[i], &d); err != nil {
				return err
			}
			patch := client.MergeFrom(d.DeepCopy())
			ct := &d.Spec.Template.Spec.Containers[0]
			old := ct.Image
			ct.Image = ct.Image[:strings.LastIndexByte(ct.Image, ':')] + fmt.Sprintf(":%d", n+1)
			if err := cl.Patch(ctx, &d, patch); err != nil {
				return err
			}
			mu.Lock()
			changed[chosen[i]] = time.Now()
			oldImage[chosen[i]] = old
			mu.Unlock()
			return nil
		}); err != nil {
			t.Fatalf("start releases: %v", err)
		}
		promotedAt := map[client.ObjectKey]time.Time{}
		nominal := time.Duration(len(compareWeights)) * comparePause
		deadline := time.Now().Add(10*nominal + 10*time.Minute)
		tick := time.NewTicker(200 * time.Millisecond)
		for len(promotedAt) < len(chosen) && time.Now().Before(deadline) && alive() == nil {
			<-tick.C
			for _, k := range chosen {
				if _, done := promotedAt[k]; !done && rec.promoted(k, waveStart) {
					promotedAt[k] = time.Now()
				}
			}
		}
		// Done is later than promoted for a tool that keeps the old pods a
		// while (Argo's scaleDownDelaySeconds, 30 s by default): a release
		// is done once no pod of its old image is left.
		doneAt := map[client.ObjectKey]time.Time{}
		doneBy := time.Now().Add(2 * time.Minute)
		for len(doneAt) < len(promotedAt) && time.Now().Before(doneBy) && alive() == nil {
			<-tick.C
			for k, at := range promotedAt {
				if _, done := doneAt[k]; done {
					continue
				}
				if g, ok := rec.oldGone(k, oldImage[k]); ok {
					doneAt[k] = maxTime(at, g)
				}
			}
		}
		tick.Stop()
		err = alive()
		if err == nil && len(promotedAt) < len(chosen) {
			err = fmt.Errorf("%d/%d promoted by the deadline", len(promotedAt), len(chosen))
		}
		if err != nil {
			t.Logf("%s at %d: the wave did not finish: %v", name, n, err)
		}
		cpu1, rss, _ = proc(pid)
		apiCPU1, _, _ := api.usage(t.Context())
		r.RSSWave, r.WaveCPU, r.APIServerCPU = rss/(1<<20), cpu1-cpu0, apiCPU1-apiCPU0
		r.APIServerWindow = time.Since(waveStart).Seconds()
		r.Released, r.Promoted = len(chosen), len(promotedAt)
		var promote, decide, lags, first []time.Duration
		last := waveStart
		for k, at := range promotedAt {
			promote = append(promote, at.Sub(changed[k]))
			if at.After(last) {
				last = at
			}
			// Argo has no Promoting phase: its promotion is the moment its
			// stable ReplicaSet becomes the new one, which is also when it
			// is settled.
			if d, ok := rec.decided(k, waveStart); ok {
				at = d
			}
			decide = append(decide, at.Sub(changed[k]))
		}
		r.WaveSeconds = last.Sub(waveStart).Seconds()
		times, missing := rec.stepTimes(chosen, waveStart)
		r.StepsMissing = missing
		for _, at := range times {
			for i := 1; i < len(at); i++ {
				lags = append(lags, at[i].Sub(at[i-1].Add(comparePause)))
			}
		}
		r.StepsReached = make([]int, len(compareWeights)+1)
		for k, at := range changed {
			ts := rec.reached(k, waveStart)
			r.StepsReached[len(ts)]++
			if len(ts) > 0 {
				first = append(first, ts[0].Sub(at))
			}
		}
		sec := func(d time.Duration) float64 { return d.Seconds() }
		r.PromoteP50, r.PromoteP99, r.PromoteMax = sec(percentile(promote, 0.5)), sec(percentile(promote, 0.99)), sec(slices.Max(append(promote, 0)))
		r.DecideP50, r.DecideP99 = sec(percentile(decide, 0.5)), sec(percentile(decide, 0.99))
		var done []time.Duration
		for k, at := range doneAt {
			done = append(done, at.Sub(changed[k]))
		}
		r.Done, r.DoneP50, r.DoneP99 = len(doneAt), sec(percentile(done, 0.5)), sec(percentile(done, 0.99))
		r.LagP50, r.LagP99, r.LagMax = sec(percentile(lags, 0.5)), sec(percentile(lags, 0.99)), sec(slices.Max(append(lags, 0)))
		r.FirstStepP50 = sec(percentile(first, 0.5))
		if r.WaveRequestsByKey, err = log.since(off, p.user); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		r.WaveRequests = total(r.WaveRequestsByKey, func(v string) bool { return v != "watch" })
		fmt.Printf("%s %s at %d: %d/%d promoted, the last after %.0fs (nominal %s); promotion p50 %.1fs p99 %.1fs; decided p50 %.1fs; done (old pods gone) %d, p50 %.1fs p99 %.1fs; step lag p50 %.2fs p99 %.2fs max %.2fs; CPU %.1fs; apiserver CPU %.1fs; %.0f requests (%.1f per release)\n",
			time.Now().Format(time.TimeOnly), name, n, r.Promoted, r.Released, r.WaveSeconds, nominal, r.PromoteP50, r.PromoteP99, r.DecideP50, r.Done, r.DoneP50, r.DoneP99,
			r.LagP50, r.LagP99, r.LagMax, r.WaveCPU, r.APIServerCPU, r.WaveRequests, r.WaveRequests/float64(r.Released))
		rows = append(rows, r)
		if r.Promoted < r.Released {
			r.FellOver = fmt.Sprintf("%d of %d releases promoted within %s of the wave's start", r.Promoted, r.Released, time.Since(waveStart).Round(time.Second))
			rows[len(rows)-1] = r
			t.Logf("%s fell over at %d: %d of %d releases promoted; larger sizes skipped", name, n, r.Promoted, r.Released)
			break
		}
	}
	save()
}

// reportTools are the results TestCompareReport reads, in the order of its columns.
var reportTools = []string{"sluice", "sluice-base", "flagger", "argo-rollouts", "rollout"}

// TestCompareReport puts the tools' results side by side: one table per
// size, each peer's figure with its ratio to Sluice's.
func TestCompareReport(t *testing.T) {
	if os.Getenv("SLUICE_BENCH") == "" || os.Getenv("SLUICE_COMPARE_REPORT") == "" {
		t.Skip("the peer benchmark's report runs with `make bench-compare`")
	}
	set := readSettings(t)
	results := map[string][]compareRow{}
	for _, tool := range reportTools {
		b, err := os.ReadFile(filepath.Join(set.out, "compare-"+tool+".json"))
		if err != nil {
			t.Logf("no results of %s: %v", tool, err)
			continue
		}
		var rows []compareRow
		if err := json.Unmarshal(b, &rows); err != nil {
			t.Fatalf("compare-%s.json: %v", tool, err)
		}
		results[tool] = rows
	}
	rev, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
	fmt.Printf("\npeer benchmark: commit %s, %s; %d weight steps of %s, no metric checks, TraefikService routing\n",
		strings.TrimSpace(string(rev)), time.Now().Format(time.DateOnly), len(compareWeights), comparePause)
	sizes := map[int]bool{}
	for _, rows := range results {
		for _, r := range rows {
			sizes[r.N] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(sizes)) {
		row := func(tool string) *compareRow {
			for i, r := range results[tool] {
				if r.N == n {
					return &results[tool][i]
				}
			}
			return nil
		}
		s := row("sluice")
		fmt.Printf("\n%d apps, %d released at once:\n\n|  |", n, max(1, int(math.Round(float64(n)*set.progress))))
		for _, tool := range reportTools {
			if r := row(tool); r != nil {
				fmt.Printf(" %s |", r.Name)
			}
		}
		fmt.Printf("\n|---|")
		for _, tool := range reportTools {
			if row(tool) != nil {
				fmt.Printf("---|")
			}
		}
		fmt.Println()
		// figure prints one line of the table. A size whose apps were
		// never all ready has its initialisation figures only (atInit).
		figure := func(atInit bool, label, format string, get func(*compareRow) float64) {
			fmt.Printf("| %s |", label)
			for _, tool := range reportTools {
				r := row(tool)
				if r == nil {
					continue
				}
				if r.FellOver != "" && r.Released == 0 && !atInit {
					fmt.Printf(" – |")
					continue
				}
				v := get(r)
				fmt.Printf(" "+format, v)
				if tool != "sluice" && s != nil {
					if base := get(s); base != 0 {
						fmt.Printf(" (×%.2f)", v/base)
					} else if v != 0 {
						fmt.Printf(" (Sluice 0)")
					}
				}
				fmt.Printf(" |")
			}
			fmt.Println()
		}
		line := func(label, format string, get func(*compareRow) float64) { figure(false, label, format, get) }
		figure(true, "all ready after, s", "%.0f", func(r *compareRow) float64 { return r.InitSeconds })
		figure(true, "RSS after init, MiB", "%.0f", func(r *compareRow) float64 { return r.RSSInit })
		line("RSS after the wave, MiB", "%.0f", func(r *compareRow) float64 { return r.RSSWave })
		line("idle CPU, cores", "%.3f", func(r *compareRow) float64 { return r.IdleCores })
		line("idle apiserver requests/s (watches aside)", "%.2f", func(r *compareRow) float64 { return r.IdleRequestsPerSec })
		line("wave: releases promoted", "%.0f", func(r *compareRow) float64 { return float64(r.Promoted) })
		line("wave: all promoted after, s", "%.0f", func(r *compareRow) float64 { return r.WaveSeconds })
		line("release: image change to promotion p50, s (nominal 50)", "%.1f", func(r *compareRow) float64 { return r.PromoteP50 })
		line("release: p99, s", "%.1f", func(r *compareRow) float64 { return r.PromoteP99 })
		line("release: image change to the decision to promote p50, s", "%.1f", func(r *compareRow) float64 { return r.DecideP50 })
		line("release: image change to done (promoted, no pod of the old image left) p50, s", "%.1f", func(r *compareRow) float64 { return r.DoneP50 })
		line("release: done p99, s", "%.1f", func(r *compareRow) float64 { return r.DoneP99 })
		line("step lag p50, s", "%.2f", func(r *compareRow) float64 { return r.LagP50 })
		line("step lag p99, s", "%.2f", func(r *compareRow) float64 { return r.LagP99 })
		line("step lag max, s", "%.2f", func(r *compareRow) float64 { return r.LagMax })
		line("wave: controller CPU, s", "%.1f", func(r *compareRow) float64 { return r.WaveCPU })
		line("wave: apiserver requests per release", "%.1f", func(r *compareRow) float64 { return r.WaveRequests / float64(max(r.Released, 1)) })
		line("wave: apiserver CPU, s", "%.1f", func(r *compareRow) float64 { return r.APIServerCPU })
		line("wave: apiserver CPU per weight step, ms", "%.1f", func(r *compareRow) float64 {
			return 1000 * r.APIServerCPU / float64(max(r.Released, 1)*len(compareWeights))
		})
		// A tool whose wave lasts longer counts more of the apiserver's
		// idle work (its own watches, the controller-manager's, kwok's
		// leases): this line takes the idle rate off over the window.
		line("wave: apiserver CPU above its idle rate, s", "%.1f", func(r *compareRow) float64 {
			return r.APIServerCPU - r.APIServerIdleCores*r.APIServerWindow
		})
		line("idle: apiserver CPU, cores", "%.3f", func(r *compareRow) float64 { return r.APIServerIdleCores })
		for _, tool := range reportTools {
			r := row(tool)
			if r == nil {
				continue
			}
			if r.FellOver != "" {
				fmt.Printf("\n%s fell over at %d: %s\n", r.Name, n, r.FellOver)
				if r.Released > 0 {
					fmt.Printf("%s, releases by the weights their route reached:", r.Name)
					for i, c := range r.StepsReached {
						fmt.Printf(" %d steps: %d;", i, c)
					}
					fmt.Println()
				}
			}
			if len(r.ReadyAt) > 0 {
				fmt.Printf("\n%s, apps ready (of those created) during the initialisation:", r.Name)
				for _, rc := range r.ReadyAt {
					fmt.Printf(" %.0f min %d (%d);", rc.Seconds/60, rc.Ready, rc.Created)
				}
				fmt.Println()
			}
		}
		for _, tool := range reportTools {
			r := row(tool)
			if r == nil || r.Released == 0 {
				continue
			}
			keys := slices.Sorted(maps.Keys(r.WaveRequestsByKey))
			fmt.Printf("\n%s, requests per release in the wave:", r.Name)
			for _, k := range keys {
				fmt.Printf(" %s %.2f;", k, r.WaveRequestsByKey[k]/float64(max(r.Released, 1)))
			}
			fmt.Println()
		}
	}
}
