package chaos

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// The invariants, checked at every route and Deployment change the watch
// delivers and every sampleEvery:
//
//  1. no traffic on a copy that is not Ready: a canary share above 0
//     needs an available canary (never for a bad release, whose pods
//     never become Ready), a share under 100 an available primary;
//  2. the canary's share never moves backwards, except to 0 (a rollback,
//     or the end of a promotion);
//  3. the primary's template never changes while it carries traffic
//     (judged by resourceVersion: judgePrimaries).
//
// The watch may deliver a Deployment's change after a route's that the
// controller decided on later, so a suspicion of (1) for a good release is
// a violation only when it still holds, read straight from the apiserver,
// confirmGrace later.
//
// A canary whose pods turn not-Ready by themselves (the canary-unready
// fault) carries its share until a controller sees it: that is allowed for
// reactionBound from the pods' change (a dead leader's lease, 15 s, and a
// retry, included), even after the pods are Ready again, since the
// Deployment's status, which controllers and this watch read, follows the
// pods late when the apiserver restarts; the time to take the share away
// is measured.
const (
	sampleEvery   = 150 * time.Millisecond
	confirmGrace  = time.Second
	reactionBound = 25 * time.Second
	// deliveryGrace is how long the route's watch may lag the
	// Deployments' before a template change is judged from the routes it
	// has: after an apiserver restart a watch may come back tens of seconds
	// late, without an error (client-go retries it inside the call; the
	// controllers' own caches lagged 15 s, seed 1207 round 11), and the
	// chaos watch is a client like any other.
	deliveryGrace = 30 * time.Second
)

type watcher struct {
	t  *testing.T
	cl client.Client
	ns string

	mu      sync.Mutex
	rels    map[string]release
	share   map[string]int32
	deploys map[string]*appsv1.Deployment
	suspect map[string]time.Time // app -> when (1) first looked broken
	// unready: app -> when the fault turned its canary's pods not-Ready;
	// reactions: from then to the share taken away.
	unready   map[string]time.Time
	reactions []time.Duration
	// availableAt: app -> when its release's canary (the user's
	// Deployment at the release's image) first had an available pod.
	availableAt map[string]time.Time
	// routes: app -> the route's versions seen, by resourceVersion;
	// primaryTemplates: the primaries' template changes not judged yet
	// (invariant 3 is judged by resourceVersion, see judgePrimaries).
	routes           map[string][]routeVersion
	primaryTemplates []primaryChange
	violations       []string
	storms           sync.WaitGroup
	// seen counts what the watch checked: route changes, primary
	// template changes and samples.
	routeChanges, primaryChanges, samples int
}

func newWatcher(t *testing.T, cl client.Client, ns string) *watcher {
	return &watcher{t: t, cl: cl, ns: ns, rels: map[string]release{}, share: map[string]int32{},
		deploys: map[string]*appsv1.Deployment{}, suspect: map[string]time.Time{}, unready: map[string]time.Time{},
		availableAt: map[string]time.Time{}, routes: map[string][]routeVersion{}}
}

func startWatch(t *testing.T, cfg *rest.Config, scheme *runtime.Scheme, ns string) *watcher {
	t.Helper()
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	w := newWatcher(t, cl, ns)
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { w.storms.Wait(); cancel() })
	handle := func(obj client.Object, on func(o any)) {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: on, UpdateFunc: func(_, o any) { on(o) }}); err != nil {
			t.Fatal(err)
		}
	}
	handle(&appsv1.Deployment{}, w.onDeployment)
	route := &unstructured.Unstructured{}
	route.SetAPIVersion("traefik.io/v1alpha1")
	route.SetKind("TraefikService")
	handle(route, w.onRoute)
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the chaos watch did not sync")
	}
	go func() {
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				w.sample()
			}
		}
	}()
	return w
}

func (w *watcher) violate(format string, args ...any) {
	// w.mu is held.
	w.violations = append(w.violations, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

func available(d *appsv1.Deployment) bool {
	return d != nil && d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas > 0
}

// availableUpdated says whether d has an available pod of its current
// template: every pod it counts is updated, and one is available. An
// observed template with only the last template's pods available (the
// controller-manager slow to replace them) is not.
func availableUpdated(d *appsv1.Deployment) bool {
	return available(d) && d.Status.UpdatedReplicas > 0 && d.Status.UpdatedReplicas == d.Status.Replicas
}

func (w *watcher) onRoute(o any) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	services, found, _ := unstructured.NestedSlice(u.Object, "spec", "weighted", "services")
	if !found {
		return
	}
	app := u.GetName()
	share := testenv.Share(services, "weight", app+"-canary")
	rv, _ := strconv.ParseInt(u.GetResourceVersion(), 10, 64)
	w.mu.Lock()
	defer w.mu.Unlock()
	if hist := w.routes[app]; len(hist) == 0 || hist[len(hist)-1].rv < rv {
		w.routes[app] = append(hist[max(0, len(hist)-31):], routeVersion{rv: rv, share: share, seen: time.Now()})
	}
	w.judgePrimaries(false)
	prev, seen := w.share[app]
	w.share[app] = share
	if !seen || prev == share {
		return
	}
	w.routeChanges++
	if share < prev && share != 0 {
		w.violate("%s: the canary's share moved back from %d%% to %d%%", app, prev, share)
	}
	if since, ok := w.unready[app]; ok && share == 0 {
		w.reactions = append(w.reactions, time.Since(since))
		delete(w.unready, app)
	}
	w.checkReady(app, share)
}

func (w *watcher) onDeployment(o any) {
	d, ok := o.(*appsv1.Deployment)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.deploys[d.Name]
	w.deploys[d.Name] = d
	if rel, ok := w.rels[d.Name]; ok && availableUpdated(d) && imageOfTemplate(d) == imageOf(rel.app, rel.round) {
		if _, seen := w.availableAt[d.Name]; !seen {
			w.availableAt[d.Name] = time.Now()
		}
	}
	if app, ok := strings.CutSuffix(d.Name, "-primary"); ok && old != nil &&
		!equality.Semantic.DeepEqual(old.Spec.Template, d.Spec.Template) {
		w.primaryChanges++
		rv, _ := strconv.ParseInt(d.ResourceVersion, 10, 64)
		w.primaryTemplates = append(w.primaryTemplates, primaryChange{app: app, rv: rv, seen: time.Now()})
		w.judgePrimaries(false)
	}
}

// routeVersion is one version of an app's route: its resourceVersion,
// the canary's share and when the watch delivered it.
type routeVersion struct {
	rv    int64
	share int32
	seen  time.Time
}

// routeTrail puts the versions of app's route the watch delivered in
// words (the last 32).
func (w *watcher) routeTrail(app string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, v := range w.routes[app] {
		out = append(out, fmt.Sprintf("%d%% (rv %d) at %s", v.share, v.rv, v.seen.Format("15:04:05.000")))
	}
	return strings.Join(out, ", ")
}

// primaryChange is a change of a primary's template, at resourceVersion
// rv.
type primaryChange struct {
	app  string
	rv   int64
	seen time.Time
}

// judgePrimaries judges invariant (3) for the primaries' template changes
// seen: the route in force when the template changed, the last version
// written before it (resourceVersions are one sequence across kinds), must
// send it nothing. The watches of two kinds deliver their changes in no
// common order (after an apiserver restart each lists again when it can),
// so a change is judged once the route's watch has delivered a later
// version, or, with final (the sampler, after deliveryGrace), from what
// it has; a change no version of the route precedes is not judged. w.mu
// is held.
func (w *watcher) judgePrimaries(final bool) {
	keep := w.primaryTemplates[:0]
	for _, pc := range w.primaryTemplates {
		hist := w.routes[pc.app]
		caughtUp := len(hist) > 0 && hist[len(hist)-1].rv > pc.rv
		if !caughtUp && !(final && time.Since(pc.seen) > deliveryGrace) {
			keep = append(keep, pc)
			continue
		}
		for i := len(hist) - 1; i >= 0; i-- {
			if hist[i].rv < pc.rv {
				if s := hist[i].share; s != 100 {
					w.violate("%s: the primary's template changed (resourceVersion %d) while the route (resourceVersion %d) gave it %d%% of the traffic", pc.app, pc.rv, hist[i].rv, 100-s)
				}
				break
			}
		}
	}
	w.primaryTemplates = keep
}

// checkReady looks at invariant (1) for app with the canary's share; w.mu
// is held.
func (w *watcher) checkReady(app string, share int32) {
	rel, releasing := w.rels[app]
	if !releasing {
		// Outside a release (the apps' initialisation) the route may point
		// at a primary still starting: nothing was moved there.
		delete(w.suspect, app)
		return
	}
	target := w.deploys[app]
	if share > 0 && rel.bad && target != nil && target.Spec.Template.Annotations[testenv.NeverReadyAnnotation] != "" {
		w.violate("%s: %d%% of the traffic on a canary whose pods never become Ready", app, share)
		return
	}
	broken := (share > 0 && !available(target)) || (share < 100 && !available(w.deploys[app+"-primary"]))
	if !broken {
		delete(w.suspect, app)
		return
	}
	if _, ok := w.suspect[app]; !ok {
		w.suspect[app] = time.Now()
	}
}

// sample re-checks every app; suspicions older than confirmGrace are
// confirmed (or cleared) from the apiserver itself.
func (w *watcher) sample() {
	w.mu.Lock()
	w.samples++
	w.judgePrimaries(true)
	var confirm []string
	for app, share := range w.share {
		w.checkReady(app, share)
		since, ok := w.suspect[app]
		if flipped, unready := w.unready[app]; unready {
			if time.Since(flipped) < reactionBound {
				continue
			}
			delete(w.unready, app)
		}
		if ok && time.Since(since) > confirmGrace {
			confirm = append(confirm, app)
		}
	}
	w.mu.Unlock()
	for _, app := range confirm {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var target, primary appsv1.Deployment
		route := &unstructured.Unstructured{}
		route.SetAPIVersion("traefik.io/v1alpha1")
		route.SetKind("TraefikService")
		err := w.cl.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: app}, route)
		if err == nil {
			err = w.cl.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: app}, &target)
		}
		if err == nil {
			err = w.cl.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: app + "-primary"}, &primary)
		}
		cancel()
		if err != nil {
			continue // the apiserver may be restarting: look again later
		}
		services, _, _ := unstructured.NestedSlice(route.Object, "spec", "weighted", "services")
		share := testenv.Share(services, "weight", app+"-canary")
		w.mu.Lock()
		switch {
		case share > 0 && !available(&target):
			w.violate("%s: %d%% of the traffic on the canary for over %s while it has no available pod", app, share, confirmGrace)
		case share < 100 && !available(&primary):
			w.violate("%s: %d%% of the traffic on the primary for over %s while it has no available pod", app, 100-share, confirmGrace)
		}
		delete(w.suspect, app)
		w.mu.Unlock()
	}
}

// turnedUnready notes that the fault turns apps' canary pods not-Ready
// now (before the pods change, so the watch never sees them first), and
// says how many of them carry a share. A canary without one may still be
// given one by a controller that has not seen the change yet (its cache,
// or the Deployment's status, lags the pods): the same bound applies.
func (w *watcher) turnedUnready(apps []string) (carrying int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, app := range apps {
		w.unready[app] = time.Now()
		if w.share[app] > 0 {
			carrying++
		}
	}
	return carrying
}

// takeReactions returns the reaction times measured since the last call.
func (w *watcher) takeReactions() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.reactions
	w.reactions = nil
	return r
}

// begin starts a round's releases.
func (w *watcher) begin(rels []release) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range rels {
		w.rels[r.app] = r
		delete(w.availableAt, r.app)
	}
}

// canaryAvailableBefore says whether app's release had an available
// canary pod before t.
func (w *watcher) canaryAvailableBefore(app string, t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.availableAt[app]
	return ok && at.Before(t)
}

// end ends the round: its storms are over, and it returns the violations
// seen since begin and what the watch checked.
func (w *watcher) end() (violations []string, checked string) {
	w.storms.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.violations
	checked = fmt.Sprintf("%d route changes, %d primary template changes, %d samples", w.routeChanges, w.primaryChanges, w.samples)
	w.routeChanges, w.primaryChanges, w.samples = 0, 0, 0
	w.violations = nil
	w.rels = map[string]release{}
	w.unready = map[string]time.Time{}
	return v, checked
}

// ended marks app's release of the round as over.
func (w *watcher) ended(app string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.rels, app)
}

func (w *watcher) canaryShare(app string) int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.share[app]
}

// storm runs f for d in the background; the round waits for it to end.
func (w *watcher) storm(f func(ctx context.Context), d time.Duration) {
	w.storms.Add(1)
	go func() {
		defer w.storms.Done()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		f(ctx)
	}()
}
