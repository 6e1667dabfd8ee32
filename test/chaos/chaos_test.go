// Package chaos runs releases on the local control plane under faults drawn
// from a seed (`make chaos`): the real controller binary killed with
// SIGKILL and restarted, two replicas whose leader is killed, the
// apiserver killed (the local control plane's supervisor restarts it), a
// second writer storming the routes with updates, and bad releases whose
// pods never become Ready. A watch of the routes, the Deployments and the
// Canaries checks the invariants all along (invariants.go), and each
// release's end state is compared with what an undisturbed release gives.
//
// Releases run in rounds: every app releases once per round, and the
// round's faults come from the seed and the round's number alone, so
// SLUICE_CHAOS_SEED=<seed> SLUICE_CHAOS_ROUND=<n> replays one round.
package chaos

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// settings come from the environment (make chaos sets them).
type settings struct {
	seed   int64
	rounds int
	apps   int
	// round, when >= 0, replays that round alone.
	round int
	// apiserver: the cluster is the chaos run's own, so its apiserver may
	// be killed (never the shared test cluster's).
	apiserver bool
	// badShare is the share of releases whose pods never become Ready.
	badShare float64
	// traffic sends real requests through a real Traefik to every app.
	traffic bool
}

// ciSample is the chaos run `make test` does without SLUICE_CHAOS, on the
// shared test cluster (whose apiserver it leaves alone): seed 21's first
// two rounds, which kill the leader of two, fail the webhooks with 503,
// take the metric provider away twice, turn the canaries not-Ready and
// storm the routes, with real traffic through Traefik.
var ciSample = settings{seed: 21, rounds: 2, apps: 4, round: -1, badShare: 0.25, traffic: true}

func readSettings(t *testing.T) settings {
	t.Helper()
	if os.Getenv("SLUICE_CHAOS") == "" {
		return ciSample
	}
	s := settings{seed: time.Now().UnixNano() % 1_000_000, rounds: 4, apps: 4, round: -1, badShare: 0.25}
	num := func(name string, into *int64) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s=%q: not a number", name, v)
			}
			*into = n
		}
	}
	var rounds, apps, round int64 = int64(s.rounds), int64(s.apps), -1
	num("SLUICE_CHAOS_SEED", &s.seed)
	num("SLUICE_CHAOS_ROUNDS", &rounds)
	num("SLUICE_CHAOS_APPS", &apps)
	num("SLUICE_CHAOS_ROUND", &round)
	s.rounds, s.apps, s.round = int(rounds), int(apps), int(round)
	s.apiserver = os.Getenv("SLUICE_CHAOS_APISERVER") != ""
	s.traffic = os.Getenv("SLUICE_CHAOS_TRAFFIC") != ""
	return s
}

// The releases: three weight steps of a short pause each, a route settle
// of 1 s (with real traffic, the default: Traefik loads a route up to 2 s
// after it reads it), and a progress deadline that ends a release whose
// canary never becomes Ready.
const (
	routeSettle      = time.Second
	stepPause        = time.Second
	progressDeadline = 20 * time.Second
	// releaseBound is how long a release may take from its image change
	// to its end (Succeeded or Failed), faults included: the nominal
	// release is under 15 s, a failed one ends after the progress
	// deadline, a leader's death costs a lease (15 s), and an apiserver
	// restart some seconds.
	releaseBound = 150 * time.Second
)

var stepWeights = []int32{10, 30, 60}

func canaryFor(ns, name, instance, hookURL string) *v1alpha1.Canary {
	var steps []v1alpha1.Step
	for _, w := range stepWeights {
		steps = append(steps, v1alpha1.Step{SetWeight: ptr.To(w)}, v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: stepPause}}})
	}
	return &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{controller.InstanceLabel: instance}},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: name}, Service: v1alpha1.ServiceSpec{Port: 80},
			Router:           v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{NativeLB: ptr.To(true)}}, // the traffic mode's Traefik reaches ClusterIPs
			ProgressDeadline: &metav1.Duration{Duration: progressDeadline},
			Strategy:         v1alpha1.Strategy{Steps: steps},
			Analysis:         analysisFor(hookURL),
		},
	}
}

// userLabel and userAnnotation are fields the user set on their
// Deployment; no release may take them away.
const (
	userLabel      = "team.example.com/owner"
	userAnnotation = "example.com/on-call"
)

func deploymentFor(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{"app": name, userLabel: "payments"},
			Annotations: map[string]string{userAnnotation: "alice"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{userAnnotation: "alice"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: imageOf(name, 0)}}},
			},
		},
	}
}

func imageOf(app string, round int) string { return fmt.Sprintf("example.com/%s:%d", app, round) }

// release is one app's release in one round and what it must end as.
type release struct {
	app   string
	round int
	bad   bool
	// stableImage is the primary's image the release must leave: its own
	// when it succeeds, the last good one (previousImage) when it fails.
	stableImage, previousImage string
	started                    time.Time
	// stranded: a good release whose canary the cluster never made
	// available before its progress deadline (its pods not created,
	// scheduled or started while the control plane recovered from a
	// fault). Sluice must roll it back, as any release whose canary is not
	// Ready: it ends as a bad one.
	stranded bool
}

// failed says whether the release must end Failed.
func (r release) failed() bool { return r.bad || r.stranded }

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("a chaos run needs the local control plane")
	}
	set := readSettings(t)
	ctrl.SetLogger(logr.Discard())
	env := testenv.Get(t)
	if err := env.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	cfg := *env.Config
	cfg.QPS, cfg.Burst = 200, 400
	cl, err := client.New(&cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	instance := fmt.Sprintf("chaos-%d", os.Getpid())
	fmt.Printf("chaos: seed %d, %d rounds of %d apps, traffic %v, controller flags %q (replay one round: SLUICE_CHAOS_SEED=%d SLUICE_CHAOS_ROUND=<n>)\n",
		set.seed, set.rounds, set.apps, set.traffic, os.Getenv("SLUICE_CHAOS_FLAGS"), set.seed)

	settle := routeSettle
	if set.traffic {
		settle = controller.DefaultRouteSettle
	}
	ctls := newControllers(t, env, ns, instance, settle)
	watch := startWatch(t, &cfg, scheme, ns)
	prov := startProvider(t)
	rc := startReceiver(t)
	if err := cl.Create(t.Context(), metricTemplate(ns, prov.url())); err != nil {
		t.Fatal(err)
	}

	var apps []string
	last := map[string]string{} // app -> the primary's image after its last release
	for i := 0; i < set.apps; i++ {
		name := fmt.Sprintf("app-%02d", i)
		apps = append(apps, name)
		for _, o := range []client.Object{deploymentFor(ns, name), canaryFor(ns, name, instance, rc.srv.URL)} {
			if err := cl.Create(t.Context(), o); err != nil {
				t.Fatal(err)
			}
		}
		last[name] = imageOf(name, 0)
	}
	ctls.start("a")
	waitAll(t, cl, ns, apps, 2*time.Minute, func(c *v1alpha1.Canary) bool { return c.Status.Phase == v1alpha1.PhaseInitialized })
	var tf *traffic
	if set.traffic {
		tf = startTraffic(t, env, cl, ns, apps)
	}

	started := time.Now()
	rg := &rig{cs: ctls, w: watch, cl: cl, ns: ns, apps: apps, prov: prov, rc: rc}
	counts := map[string]int{}
	var fig figures
	releases, total := 0, 0
	first, end := 1, set.rounds
	if set.round >= 1 {
		first, end = set.round, set.round
		// The apps stand where that round found them: at the last good
		// image of the rounds before it, which the seed decides.
		for r := 1; r < set.round; r++ {
			for _, rel := range planReleases(set, r, apps, last) {
				last[rel.app] = rel.stableImage
			}
		}
		for _, app := range apps {
			setImage(t, cl, ns, app, last[app], false)
		}
		waitAll(t, cl, ns, apps, 2*time.Minute, func(c *v1alpha1.Canary) bool {
			return c.Status.Phase == v1alpha1.PhaseSucceeded || c.Status.Phase == v1alpha1.PhaseInitialized
		})
	}
	for r := first; r <= end; r++ {
		rels := planReleases(set, r, apps, last)
		faults := planFaults(set, r)
		fmt.Printf("round %d: %s; faults: %s\n", r, describeReleases(rels), describeFaults(faults))
		watch.begin(rels)
		rg.rels = rels
		rc.take()
		deaths := ctls.deaths.Load()
		roundStart := time.Now()
		for i := range rels {
			rels[i].started = time.Now()
			setImage(t, cl, ns, rels[i].app, imageOf(rels[i].app, r), rels[i].bad)
		}
		for _, f := range faults {
			if d := time.Until(roundStart.Add(f.at)); d > 0 {
				time.Sleep(d)
			}
			if f.kind == modeOne || f.kind == modeTwo {
				counts["rounds with "+f.kind]++
			} else {
				counts[f.kind]++
			}
			if took := f.inject(t, rg); took > 0 {
				fig.failovers = append(fig.failovers, took)
			}
		}
		ctls.ensureRunning()
		for i := range rels {
			rel := &rels[i]
			fig.failedRounds += waitEnd(t, cl, ns, rel, watch)
			last[rel.app] = rel.stableImage
			if rel.stranded {
				last[rel.app] = rel.previousImage
				fig.stranded++
				fmt.Printf("  %s: the cluster made no canary pod available before the progress deadline; rolled back: %s\n", rel.app, describePods(cl, ns, rel.app))
			}
			releases++
		}
		waitPosts(rc, rels)
		violations, checked := watch.end()
		hc := rc.take()
		// Each controller death, and each apiserver restart (status
		// writes fail meanwhile, and a retry decides again from the
		// status before), may repeat or lose a call.
		disruptions := int(ctls.deaths.Load()-deaths) + countFaults(faults, faultAPIServer)
		hookViolations, lost, extra := checkHooks(rels, hc, disruptions)
		violations = append(violations, hookViolations...)
		fig.hookCalls += hc.calls
		fig.hookRefused += hc.refused
		fig.hooksLost += lost
		fig.hooksExtra += extra
		fig.reactions = append(fig.reactions, watch.takeReactions()...)
		if tf != nil {
			excuse := map[string]bool{}
			unready := countFaults(faults, faultUnready) > 0
			for _, rel := range rels {
				excuse[rel.app] = unready && !rel.bad
			}
			tc := tf.take(excuse)
			fig.requests += tc.requests
			fig.failedRequests += tc.failed
			fig.excusedRequests += tc.excused
			if tc.failed > 0 {
				violations = append(violations, fmt.Sprintf("%d of %d requests failed (first: %s)", tc.failed, tc.requests, tc.firstFailure))
			}
		}
		for _, v := range violations {
			t.Errorf("round %d (seed %d): %s", r, set.seed, v)
		}
		fmt.Printf("round %d: ended after %s; the watch checked %s; %d violations\n", r, time.Since(roundStart).Round(time.Second), checked, len(violations))
		total += len(violations)
		checkUserFields(t, cl, ns, apps)
		if t.Failed() {
			fmt.Printf("round %d failed: replay it alone with SLUICE_CHAOS_SEED=%d SLUICE_CHAOS_ROUND=%d\n", r, set.seed, r)
			break
		}
	}
	report(set, releases, counts, fig, total, time.Since(started))
}

// figures are what a run measured beyond its violations.
type figures struct {
	// failovers: a leader's death to the next decision.
	failovers []time.Duration
	// reactions: a canary turning not-Ready to its share taken away.
	reactions []time.Duration
	// failedRounds: check rounds the releases counted as failed (the
	// metric provider away).
	failedRounds int
	// stranded: good releases whose canary the cluster never made
	// available before their deadline (rolled back, as they must be).
	stranded int
	// hook calls, those answered 503 or not at all, post-rollout calls
	// lost and calls beyond one per point (each allowed by a death).
	hookCalls, hookRefused, hooksLost, hooksExtra int
	// requests through Traefik, those failed, and those failed on a
	// canary the round turned not-Ready.
	requests, failedRequests, excusedRequests int
}

// planReleases decides, from the seed and the round, which releases of
// the round are bad, and so what each must leave as the primary's image.
func planReleases(set settings, round int, apps []string, last map[string]string) []release {
	rnd := rand.New(rand.NewSource(set.seed*1_000_003 + int64(round)))
	var out []release
	for _, app := range apps {
		bad := rnd.Float64() < set.badShare
		stable := imageOf(app, round)
		if bad {
			stable = last[app]
		}
		out = append(out, release{app: app, round: round, bad: bad, stableImage: stable, previousImage: last[app]})
	}
	return out
}

func describeReleases(rels []release) string {
	var good, bad int
	for _, r := range rels {
		if r.bad {
			bad++
		} else {
			good++
		}
	}
	return fmt.Sprintf("%d good and %d bad releases", good, bad)
}

// setImage is the user's release: a new image, and for a bad one the
// annotation that keeps the local cluster's pods from becoming Ready.
func setImage(t *testing.T, cl client.Client, ns, app, image string, bad bool) {
	t.Helper()
	testenv.Eventually(t, time.Minute, "release "+app, func(ctx context.Context) error {
		var d appsv1.Deployment
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: app}, &d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		if bad {
			d.Spec.Template.Annotations[testenv.NeverReadyAnnotation] = "true"
		} else {
			delete(d.Spec.Template.Annotations, testenv.NeverReadyAnnotation)
		}
		return cl.Update(ctx, &d)
	})
}

func waitAll(t *testing.T, cl client.Client, ns string, apps []string, timeout time.Duration, ok func(*v1alpha1.Canary) bool) {
	t.Helper()
	testenv.Eventually(t, timeout, "every app settled", func(ctx context.Context) error {
		for _, app := range apps {
			var c v1alpha1.Canary
			if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: app}, &c); err != nil {
				return err
			}
			if !ok(&c) {
				return fmt.Errorf("%s: %s %s", app, c.Status.Phase, c.Status.Message)
			}
		}
		return nil
	})
}

// waitEnd waits for a release's end within releaseBound and checks its end
// state against an undisturbed release's: a good one Succeeded with its
// revision stable and its image on the primary; a bad one Failed with the
// last good image on the primary; either way no traffic on the canary.
func waitEnd(t *testing.T, cl client.Client, ns string, rel *release, w *watcher) (failedRounds int) {
	t.Helper()
	deadline := rel.started.Add(releaseBound)
	for {
		var c v1alpha1.Canary
		var d, primary appsv1.Deployment
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: rel.app}, &c)
		if err == nil {
			err = cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: rel.app}, &d)
		}
		if err == nil {
			err = cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: rel.app + "-primary"}, &primary)
		}
		cancel()
		settled := err == nil && c.Status.CanaryRevision != "" && c.Status.ObservedGeneration == c.Generation &&
			imageOfTemplate(&d) == imageOf(rel.app, rel.round) && w.canaryShare(rel.app) == 0
		if settled && !rel.bad && c.Status.Phase == v1alpha1.PhaseFailed && c.Status.Reason == v1alpha1.ReasonProgressDeadlineExceeded &&
			imageOfTemplate(&primary) == rel.previousImage {
			// A good release rolled back at its deadline is right when its
			// canary never had an available pod before the rollback.
			if stalled := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionStalled); stalled != nil &&
				stalled.Reason == v1alpha1.ReasonProgressDeadlineExceeded && !stalled.LastTransitionTime.Time.Before(rel.started.Truncate(time.Second)) &&
				!w.canaryAvailableBefore(rel.app, stalled.LastTransitionTime.Add(time.Second)) {
				rel.stranded = true
				w.ended(rel.app)
				return int(c.Status.FailedChecks)
			}
		}
		want := v1alpha1.PhaseSucceeded
		if rel.bad {
			want = v1alpha1.PhaseFailed
		}
		if settled && c.Status.Phase == want && imageOfTemplate(&primary) == rel.stableImage {
			if !rel.bad && c.Status.StableRevision != c.Status.CanaryRevision {
				t.Errorf("%s round %d: Succeeded with stable %s, canary %s", rel.app, rel.round, c.Status.StableRevision, c.Status.CanaryRevision)
			}
			w.ended(rel.app)
			return int(c.Status.FailedChecks)
		}
		if time.Now().After(deadline) {
			t.Errorf("%s round %d (bad %v): not ended as an undisturbed release would within %s: phase %s (%s), primary image %s (want %s), canary share %d%%, err %v",
				rel.app, rel.round, rel.bad, releaseBound, c.Status.Phase, c.Status.Message, imageOfTemplate(&primary), rel.stableImage, w.canaryShare(rel.app), err)
			t.Logf("%s: its pods now: %s; the nodes: %s", rel.app, describePods(cl, ns, rel.app), describeNodes(cl))
			t.Logf("%s: its route as the watch saw it: %s; its status: %s", rel.app, w.routeTrail(rel.app), describeStatus(&c))
			t.Logf("%s: its Canary's events: %s", rel.app, describeEvents(cl, ns, rel.app, rel.started.Add(-time.Second)))
			return 0
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// describeStatus puts a Canary's progress and conditions in words.
func describeStatus(c *v1alpha1.Canary) string {
	out := fmt.Sprintf("step %d weight %d", c.Status.CurrentStep, c.Status.CanaryWeight)
	if c.Status.LastProgressTime != nil {
		out += ", last progress " + c.Status.LastProgressTime.Format("15:04:05")
	}
	for _, cond := range c.Status.Conditions {
		out += fmt.Sprintf("; %s=%s %s since %s", cond.Type, cond.Status, cond.Reason, cond.LastTransitionTime.Format("15:04:05"))
	}
	return out
}

// describeEvents puts the Events of app's Canary since since in words,
// oldest first: the controllers' decisions, with their times.
func describeEvents(cl client.Client, ns, app string, since time.Time) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var list corev1.EventList
	if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err.Error()
	}
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	for _, e := range list.Items {
		if e.InvolvedObject.Kind != "Canary" || e.InvolvedObject.Name != app {
			continue
		}
		at, n := e.EventTime.Time, e.Count
		if e.Series != nil {
			at, n = e.Series.LastObservedTime.Time, e.Series.Count
		}
		if at.IsZero() {
			at = e.LastTimestamp.Time
		}
		if at.Before(since) {
			continue
		}
		msg := e.Message
		if len(msg) > 160 {
			msg = msg[:160] + "..."
		}
		lines = append(lines, line{at, fmt.Sprintf("%s %s (x%d, %s): %s", at.Format("15:04:05.000"), e.Reason, max(n, 1), e.ReportingInstance, msg)})
	}
	slices.SortFunc(lines, func(a, b line) int { return a.at.Compare(b.at) })
	var out []string
	for _, l := range lines {
		out = append(out, l.text)
	}
	return strings.Join(out, " | ")
}

// describeNodes puts the nodes' Ready conditions in words: a node whose
// lease was not renewed within the controller-manager's grace period
// (after an apiserver outage) turns not-Ready, and its pods with it.
func describeNodes(cl client.Client) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var nodes corev1.NodeList
	if err := cl.List(ctx, &nodes); err != nil {
		return err.Error()
	}
	var out []string
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				out = append(out, fmt.Sprintf("%s Ready=%s (%s) since %s, heartbeat %s", n.Name, c.Status, c.Reason,
					c.LastTransitionTime.Format("15:04:05"), c.LastHeartbeatTime.Format("15:04:05")))
			}
		}
	}
	return strings.Join(out, "; ")
}

// describePods puts app's pods (its own Deployment's and the primary's)
// in words: name, phase, Ready condition, when created.
func describePods(cl client.Client, ns, app string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pods corev1.PodList
	if err := cl.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": app}); err != nil {
		return err.Error()
	}
	var out []string
	for _, p := range pods.Items {
		ready := "no Ready condition"
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				ready = fmt.Sprintf("Ready=%s since %s", c.Status, c.LastTransitionTime.Format(time.TimeOnly))
			}
		}
		out = append(out, fmt.Sprintf("%s %s %s, node %q, created %s", p.Name, p.Status.Phase, ready, p.Spec.NodeName, p.CreationTimestamp.Format(time.TimeOnly)))
	}
	return strings.Join(out, "; ")
}

func imageOfTemplate(d *appsv1.Deployment) string {
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return ""
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// checkUserFields: the user's labels and annotations are all still there.
func checkUserFields(t *testing.T, cl client.Client, ns string, apps []string) {
	t.Helper()
	for _, app := range apps {
		var d appsv1.Deployment
		if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, &d); err != nil {
			t.Errorf("%s: %v", app, err)
			continue
		}
		if d.Labels[userLabel] != "payments" || d.Annotations[userAnnotation] != "alice" || d.Spec.Template.Annotations[userAnnotation] != "alice" {
			t.Errorf("%s: the user's fields were lost: labels %v, annotations %v, template annotations %v", app, d.Labels, d.Annotations, d.Spec.Template.Annotations)
		}
	}
}

func report(set settings, releases int, counts map[string]int, fig figures, violations int, wall time.Duration) {
	var kinds []string
	for k := range counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	fmt.Printf("chaos: seed %d: %d releases; faults: %s; invariant violations: %d; leader failover (the leader's death to the next decision): %s; "+
		"a not-Ready canary's share taken away after %s; %d check rounds failed (the provider away); %d good releases rolled back because the cluster made no canary pod available before their deadline; webhooks: %d calls, %d refused or hung, %d post-rollout calls lost and %d calls repeated (with a controller's death); "+
		"requests through Traefik: %d, %d failed, and %d failed on canaries turned not-Ready; wall time %s\n",
		set.seed, releases, strings.Join(parts, ", "), violations, percentiles(fig.failovers), percentiles(fig.reactions),
		fig.failedRounds, fig.stranded, fig.hookCalls, fig.hookRefused, fig.hooksLost, fig.hooksExtra,
		fig.requests, fig.failedRequests, fig.excusedRequests, wall.Round(time.Second))
}

// percentiles puts p50, p99 and max of ds in words.
func percentiles(ds []time.Duration) string {
	n := len(ds)
	if n == 0 {
		return "none measured"
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return fmt.Sprintf("p50 %s, p99 %s, max %s over %d", ds[n/2].Round(10*time.Millisecond),
		ds[min(n-1, n*99/100)].Round(10*time.Millisecond), ds[n-1].Round(10*time.Millisecond), n)
}

// controllers runs the real controller binary, one or two replicas with
// leader election, each serving metrics on its own port (to tell the
// leader: leader_election_master_status).
type controllers struct {
	t          *testing.T
	bin        string
	kubeconfig string
	ns         string
	instance   string
	settle     time.Duration

	mu    sync.Mutex
	procs map[string]*controllerProc
	// deaths counts the replicas' processes that ended (killed, or exited
	// on their own).
	deaths atomic.Int64
}

type controllerProc struct {
	cmd     *exec.Cmd
	metrics string
	done    chan struct{}
	log     *os.File
}

func newControllers(t *testing.T, env *testenv.Cluster, ns, instance string, settle time.Duration) *controllers {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
	build.Dir = env.Root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the controller: %v\n%s", err, out)
	}
	cs := &controllers{t: t, bin: bin, kubeconfig: env.Kubeconfig, ns: ns, instance: instance, settle: settle, procs: map[string]*controllerProc{}}
	t.Cleanup(func() {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		for name, p := range cs.procs {
			_ = p.cmd.Process.Kill()
			<-p.done
			p.log.Close()
			if dir := os.Getenv("SLUICE_CHAOS_LOGS"); dir != "" {
				if b, err := os.ReadFile(p.log.Name()); err == nil {
					_ = os.WriteFile(filepath.Join(dir, "controller-"+name+".log"), b, 0o644)
				}
			}
			if t.Failed() {
				b, _ := os.ReadFile(p.log.Name())
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("controller %s, the end of its log:\n%s", name, strings.Join(lines[max(0, len(lines)-25):], "\n"))
			}
		}
	})
	return cs
}

// start runs replica name (if it is not running).
func (cs *controllers) start(name string) {
	cs.t.Helper()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if p := cs.procs[name]; p != nil {
		select {
		case <-p.done:
		default:
			return
		}
	}
	metrics := testenv.FreeAddr(cs.t)
	log, err := os.OpenFile(filepath.Join(cs.t.TempDir(), "controller-"+name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		cs.t.Fatal(err)
	}
	cmd := exec.Command(cs.bin, "--kubeconfig", cs.kubeconfig, "--instance-id", cs.instance,
		"--leader-elect", "--leader-election-namespace", cs.ns,
		"--metrics-bind-address", metrics, "--health-probe-bind-address", "0",
		"--route-settle", cs.settle.String(), "--workers", "4")
	cmd.Args = append(cmd.Args, strings.Fields(os.Getenv("SLUICE_CHAOS_FLAGS"))...)
	// Gone with the test binary, even when it dies without its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		cs.t.Fatalf("start controller %s: %v", name, err)
	}
	p := &controllerProc{cmd: cmd, metrics: metrics, done: make(chan struct{}), log: log}
	go func() { _ = cmd.Wait(); cs.deaths.Add(1); close(p.done) }()
	cs.procs[name] = p
}

// kill sends SIGKILL to replica name and waits for it to be gone.
func (cs *controllers) kill(name string) {
	cs.mu.Lock()
	p := cs.procs[name]
	cs.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (cs *controllers) running() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var out []string
	for name, p := range cs.procs {
		select {
		case <-p.done:
		default:
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// ensureRunning brings replica a back if no replica runs (a fault's
// restart is always scheduled, but a round must not end without one).
func (cs *controllers) ensureRunning() {
	if len(cs.running()) == 0 {
		cs.start("a")
	}
}

// leader is the replica whose metrics say it leads, "" when none does yet.
func (cs *controllers) leader() string {
	for _, name := range cs.running() {
		cs.mu.Lock()
		addr := cs.procs[name].metrics
		cs.mu.Unlock()
		if leads(addr) {
			return name
		}
	}
	return ""
}
