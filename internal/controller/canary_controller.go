// Package controller reconciles Canaries: it observes the target, the
// primary copy and the route from informer caches, asks the engine what to
// do, applies that, and writes the status once.
package controller

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/checks"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/notify"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/statusbatch"
	"github.com/sluice-dev/sluice/internal/workload"
)

// Finalizer holds a deleted Canary until its traffic is handed back.
const Finalizer = "sluice.dev/finalizer"

// CanaryReconciler reconciles Canary objects.
type CanaryReconciler struct {
	// Client reads from the manager's informer caches and writes to the
	// apiserver.
	Client client.Client
	Scheme *runtime.Scheme
	// Backends answers existence checks of user-supplied backends from a
	// metadata-only cache (see NewBackendCache).
	Backends client.Reader
	// APIReader reads past the cache (a re-read after a write conflict);
	// nil means Client.
	APIReader client.Reader
	// RouterCache caches the routers' kinds (NewRouterCache); nil means
	// the routers read through Client.
	RouterCache cache.Cache
	// Checks runs metric check rounds off the reconcile workers.
	Checks *checks.Runner
	// Notifier posts events to the Canaries' alerts; nil for none.
	Notifier *notify.Notifier
	// Routers are the routers the reconciler can drive; a Canary's
	// spec.router selects one (internal/routers lists them).
	Routers router.Registry
	// Recorder records Events on Canaries.
	Recorder events.EventRecorder
	// Metrics, when set, are updated from each status change.
	Metrics *Metrics
	// Now is the clock; nil means time.Now. Only the reconciler reads it;
	// the engine is given the time.
	Now func() time.Time
	// RouteSettle is how long a proxy is given to load a route after the
	// router reads it back (engine.Route.Settle); 0 for none.
	RouteSettle time.Duration
	// TargetPoll is how often a Canary whose Deployment is missing looks
	// for it again (DefaultTargetPoll when zero).
	TargetPoll time.Duration
	// Sight tells when the caches last came to see the cluster after an
	// apiserver outage (nil: they are taken to see it always).
	Sight *Sight

	// status decides when a status is written: the statuses of a weight
	// step waiting for its route are held in memory, and a cached Canary
	// older than our own last write is recognised (statusbatch).
	status statusbatch.Batcher
	// watches starts the watches of a router's kinds when a Canary first
	// uses it.
	watches *routerWatches
	// acting is when this process first reconciled (Unix nanoseconds, 0
	// before): the controller reconciles only once it holds the lease,
	// and a lost lease ends the process, so it is when this leader
	// started to act (engine.Input.ActingSince).
	acting atomic.Int64
}

// DefaultRouteSettle is --route-settle's default. A router reads back what
// it wrote (and, for Gateway API, that a Gateway accepted it), but the
// proxy loads it a moment later: Traefik's providers throttle changes by
// 2 s, and Envoy-based gateways push configuration after they report
// status. Measured end to end with Traefik in Gateway API mode (test/e2e):
// without it, the canary was scaled down as soon as Traefik had accepted
// the 0% route, and the next 1.3 s of requests (264 of them) failed with
// 503.
const DefaultRouteSettle = 3 * time.Second

// +kubebuilder:rbac:groups=sluice.dev,resources=canaries,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=sluice.dev,resources=canaries/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sluice.dev,resources=canaries/finalizers,verbs=update
// +kubebuilder:rbac:groups=sluice.dev,resources=metrictemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=sluice.dev,resources=alertproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=sluice.dev,resources=canaryrevisions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=sluice.dev,resources=canaryrevisions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps;secrets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=selfsubjectaccessreviews,verbs=create

// Reconcile runs one observe -> decide -> apply -> status cycle.
func (r *CanaryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var c v1alpha1.Canary
	if err := r.Client.Get(ctx, req.NamespacedName, &c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &c)
	}
	if !controllerutil.ContainsFinalizer(&c, Finalizer) {
		// Before anything else exists: deleting the Canary must hand the
		// traffic back, not leave the Deployment at zero replicas.
		patch := client.MergeFrom(c.DeepCopy())
		controllerutil.AddFinalizer(&c, Finalizer)
		if err := r.Client.Patch(ctx, &c, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer to canary %s/%s: %w", c.Namespace, c.Name, err)
		}
	}
	if r.status.Stale(req.NamespacedName, c.ResourceVersion) {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	// written is the status on the apiserver; the decision starts from a
	// status held back, if any.
	written := c.Status.DeepCopy()
	c.Status = r.status.Start(req.NamespacedName, c.ResourceVersion, *written)
	s, err := r.observe(ctx, &c)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.now()
	out := engine.Decide(engine.Input{Canary: &c, Obs: s.obs, Now: now, ActingSince: r.actingSince(now)})
	// Rounds and webhooks see the status just decided (their payload's
	// phase, weight and step).
	next := c.DeepCopy()
	next.Status = out.Status
	if out.Desired.CheckRound > 0 {
		r.Checks.Submit(next, out.Desired.CheckRound)
	}
	for _, call := range out.Desired.Hooks {
		r.Checks.SubmitHook(next, call)
	}
	applyErr := r.apply(ctx, &c, s, out)
	for _, e := range out.Events {
		r.Recorder.Eventf(&c, nil, e.Type(), e.Reason, "Reconcile", "%s", e.Message)
		r.Checks.Notify(ctx, next, e)
		if r.Notifier != nil {
			r.Notifier.Notify(next, notify.Event{Warning: e.Warning, Reason: e.Reason, Message: e.Message})
		}
	}
	c.Status = *written
	requeue, held := r.holdStatus(&c, out, applyErr == nil, now)
	if !held {
		// The records follow the statuses written: a held status (a route
		// in flight, words only) adds nothing to them.
		if applyErr == nil {
			applyErr = r.syncRecords(ctx, &c, s, out.Status)
		}
		if err := r.recordStatus(ctx, &c, out, applyErr, now); err != nil {
			return ctrl.Result{}, err
		}
		requeue = out.RequeueAfter
	}
	if applyErr != nil {
		return ctrl.Result{}, applyErr
	}
	if s.routeChanged && (requeue == 0 || requeue > RouteReadBack) {
		requeue = RouteReadBack
	}
	poll := r.TargetPoll
	if poll <= 0 {
		poll = DefaultTargetPoll
	}
	if (s.target == nil || s.targetUncached) && (requeue == 0 || requeue > poll) {
		// A Deployment created after its Canary is not labelled yet (or
		// cannot be), so the label-filtered cache sends no event for it:
		// look again.
		requeue = poll
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// DefaultTargetPoll is how often a Canary whose Deployment does not exist
// looks for it (one read each time).
const DefaultTargetPoll = 30 * time.Second

// actingSince is engine.Input.ActingSince: this process's first decision,
// or the moment its caches last came to see the cluster after an
// apiserver outage (now, while they cannot), whichever is later.
func (r *CanaryReconciler) actingSince(now time.Time) time.Time {
	r.acting.CompareAndSwap(0, now.UnixNano())
	since := time.Unix(0, r.acting.Load())
	if back := r.Sight.Since(); back.After(since) {
		since = back
	}
	return since
}

func (r *CanaryReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// scope is what one reconcile observed.
type scope struct {
	// target is the user's Deployment; nil when absent.
	target *appsv1.Deployment
	// primary is the primary copy; nil when absent.
	primary *appsv1.Deployment
	// revision is the target's release revision ("" without a target).
	revision string
	// configHashes are the data hashes of the ConfigMaps and Secrets the
	// target references, as its revision counted them.
	configHashes map[string]string
	// split is the route's backends (weight set later from the engine).
	split router.Split
	// route is the router of the Canary.
	route router.Router
	obs   engine.Observations
	// targetUncached: the target could not be labelled, so it is not in
	// the cache and sends no events.
	targetUncached bool
	// canaryBlocked: a backend of the canary's phase is missing or
	// forbidden; a route that sends nothing to the canary leaves them out.
	canaryBlocked bool
	// routeChanged: this reconcile asked the router for a route other
	// than the one it read back.
	routeChanged bool
	// autoscaler is spec.autoscalerRef's autoscaler, nil without one (or
	// when it is missing).
	autoscaler *autoscalerState
}

// RouteReadBack is how soon a Canary looks again after asking its router
// for a new route, so that the status says what the router carries as soon
// as it carries it. The routers' objects are watched (NewRouterCache), so
// the write's own event usually wakes the Canary first; this bounds the
// wait when a proxy reports on the route later than Sluice's write (a
// Gateway's acceptance) and costs one cached read. Skipping it for the
// watched HTTPRoute made the 1,000-Canary step lag worse
// (docs/performance.md).
const RouteReadBack = 250 * time.Millisecond

// observe reads everything the engine needs from the caches.
func (r *CanaryReconciler) observe(ctx context.Context, c *v1alpha1.Canary) (*scope, error) {
	route, err := r.router(c)
	if err != nil {
		return nil, err
	}
	s := &scope{route: route}
	if err := r.observeWorkloads(ctx, c, s); err != nil {
		return nil, err
	}
	s.split.Primary, s.split.Canary = router.Backends(c, workload.ServiceName(c))
	s.split.PrimaryRevision, s.split.CanaryRevision = s.obs.Primary.Revision, s.revision
	if a := c.Spec.Strategy.SessionAffinity; a != nil && s.revision != "" {
		s.split.Sticky = &router.Sticky{Cookie: a.GetCookieName(), MaxAge: a.GetMaxAge(), Value: s.revision}
	}
	if err := r.observeBlocked(ctx, c, s); err != nil {
		return nil, err
	}
	if s.obs.Route, err = s.route.Observe(ctx, c, s.split); err != nil {
		return nil, err
	}
	s.obs.Route.Settle = r.RouteSettle
	if res, ok := r.Checks.Result(c); ok {
		s.obs.Checks = &res
	}
	s.obs.Hooks = r.Checks.HookResults(c)
	stable, err := r.record(ctx, c, c.Status.StableRevision)
	if err != nil {
		return nil, err
	}
	s.obs.StableRecord = stable != nil
	if s.obs.Drift, s.obs.DriftField, err = r.drift(ctx, c, s.primary); err != nil {
		return nil, err
	}
	return s, nil
}

// observeWorkloads reads the target (its revision and config) and the
// primary, and the replicas a release runs with.
func (r *CanaryReconciler) observeWorkloads(ctx context.Context, c *v1alpha1.Canary, s *scope) error {
	var err error
	if s.target, s.targetUncached, err = r.getTarget(ctx, c, true); err != nil {
		return err
	}
	if s.primary, err = r.getDeployment(ctx, c.Namespace, workload.PrimaryName(c.Spec.TargetRef.Name)); err != nil {
		return err
	}
	if s.target != nil {
		if s.revision, s.configHashes, err = r.revisionAndConfig(ctx, c, s.target); err != nil {
			return err
		}
		s.obs.Target = workload.Observe(s.target, s.revision)
		if _, err := workload.PrimarySelector(s.target); err != nil {
			s.obs.Blocked, s.obs.BlockedReason = err.Error(), v1alpha1.ReasonUnsupportedSelector
		}
	}
	s.obs.Primary = workload.Observe(s.primary, workload.PrimaryRevision(s.primary))
	s.obs.ReleaseReplicas = 1
	switch {
	case s.target != nil && s.target.Spec.Replicas != nil && *s.target.Spec.Replicas > 0:
		s.obs.ReleaseReplicas = *s.target.Spec.Replicas
	case s.target != nil && s.target.Spec.Replicas == nil:
		s.obs.ReleaseReplicas = 1
	case s.primary != nil && s.primary.Spec.Replicas != nil && *s.primary.Spec.Replicas > 0:
		s.obs.ReleaseReplicas = *s.primary.Spec.Replicas
	}
	return r.observeAutoscaler(ctx, c, s)
}

// observeBlocked looks for a configuration that must not be routed, first
// found first: the target's selector, the backends (one phase at a time,
// so that a problem is known to be the primary's or the canary's), the
// router's own references, a check condition that does not compile.
func (r *CanaryReconciler) observeBlocked(ctx context.Context, c *v1alpha1.Canary, s *scope) error {
	if s.obs.Blocked == "" && c.Spec.Service.BackendRefs != nil {
		for _, phase := range []map[string][]router.Backend{{"primary": s.split.Primary}, {"canary": s.split.Canary}} {
			reason, msg, err := router.CheckBackends(ctx, r.Backends, r.Client, r.Client.RESTMapper(), c, "HTTPRoute", phase)
			if err != nil {
				return err
			}
			if msg == "" {
				continue
			}
			s.obs.Blocked, s.obs.BlockedReason = msg, reason
			// A problem on the canary's side never stops traffic from
			// returning to the primary: such a route is written without
			// the canary's backends (see apply).
			_, s.canaryBlocked = phase["canary"]
			s.obs.BlockedWithdrawable = s.canaryBlocked
			break
		}
	}
	if ch, ok := s.route.(router.Checker); ok && s.obs.Blocked == "" {
		reason, msg, err := ch.Check(ctx, c)
		if err != nil {
			return err
		}
		s.obs.Blocked, s.obs.BlockedReason = msg, reason
		// A router's own references (middlewares, entries it shares with
		// the user) never stop it from sending everything to the primary.
		s.obs.BlockedWithdrawable = msg != ""
	}
	if s.obs.Blocked == "" {
		// Checked last: a condition that cannot be judged stops the
		// release before the canary gets traffic, but never a route that
		// sends everything to the primary (nothing else is wrong with it).
		if reason, msg := r.Checks.Unjudgeable(c); msg != "" {
			s.obs.Blocked, s.obs.BlockedReason, s.obs.BlockedWithdrawable = msg, reason, true
		}
	}
	return nil
}

// revisionAndConfig is the release revision of a Canary's target (its pod
// template and the data of the ConfigMaps and Secrets it references), and
// the data hashes it counted.
func (r *CanaryReconciler) revisionAndConfig(ctx context.Context, c *v1alpha1.Canary, target *appsv1.Deployment) (string, map[string]string, error) {
	hashes, err := r.configHashes(ctx, c.Namespace, &target.Spec.Template)
	if err != nil {
		return "", nil, err
	}
	var ignore []string
	if meta := r.revisionAnnotation(c); meta != "" {
		ignore = append(ignore, meta)
	}
	return workload.Revision(&target.Spec.Template, hashes, ignore...), hashes, nil
}

// router returns the Canary's router (the CRD admits exactly one), its
// kinds watched: its objects are read from the router cache, the user's
// labelled on first read (see userReader).
func (r *CanaryReconciler) router(c *v1alpha1.Canary) (router.Router, error) {
	reg := r.Routers.For(c)
	if err := r.watches.ensure(reg); err != nil {
		return nil, fmt.Errorf("canary %s/%s: %w", c.Namespace, c.Name, err)
	}
	var rd client.Reader = r.Client
	if r.APIReader != nil {
		rd = r.APIReader
	}
	labels := map[string]string{workload.CanaryLabel: c.Name}
	var cl client.Client = r.Client
	user := client.Reader(r.Client)
	if r.RouterCache != nil {
		kinds := make(map[schema.GroupKind]bool, len(reg.Kinds))
		for _, k := range reg.Kinds {
			kinds[k.GroupKind()] = true
		}
		cl = kindsClient{Client: r.Client, cache: r.RouterCache, kinds: kinds}
		user = userReader{cached: r.RouterCache, live: rd, writer: r.Client, labels: labels}
	}
	return reg.New(router.Deps{Client: cl, Reader: rd, User: user, Scheme: r.Scheme, Mapper: r.Client.RESTMapper(),
		Labels: labels, Apex: workload.ServiceName(c), Now: r.Now}), nil
}

// revisionAnnotation is the pod-template annotation the Canary's router
// needs set to each copy's revision, "" for none.
func (r *CanaryReconciler) revisionAnnotation(c *v1alpha1.Canary) string {
	if f := r.Routers.For(c).RevisionAnnotation; f != nil {
		return f(c)
	}
	return ""
}

// getTarget reads the Canary's Deployment. The cache holds only the
// Deployments labelled sluice.dev/canary (see CacheOptions): the first
// time, the target is read from the apiserver and, with label set, given
// the label, so that from then on it is cached and its changes are
// watched. A target that loses the label drops out of the cache (a delete
// event), is read and labelled again. uncached says the target was read
// past the cache and will not send events (the label could not be set):
// the caller must look again by itself. A failed label patch never stops
// the Canary from deciding: the target read is good.
func (r *CanaryReconciler) getTarget(ctx context.Context, c *v1alpha1.Canary, label bool) (d *appsv1.Deployment, uncached bool, err error) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.TargetRef.Name}
	d, err = r.getFresh(ctx, key)
	if d == nil || err != nil {
		return d, false, err
	}
	if _, has := d.Labels[workload.CanaryLabel]; has || !label {
		return d, false, nil
	}
	labelled := d.DeepCopy()
	patch := client.MergeFrom(d.DeepCopy())
	if labelled.Labels == nil {
		labelled.Labels = map[string]string{}
	}
	labelled.Labels[workload.CanaryLabel] = c.Name
	if err := r.Client.Patch(ctx, labelled, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		log.FromContext(ctx).Error(err, "Cannot label the target; it is read past the cache until it can be",
			"deployment", key.String(), "label", workload.CanaryLabel)
		return d, true, nil
	}
	return labelled, false, nil
}

// getFresh reads a Deployment from the cache or, when the cache does not
// hold it (it is not labelled), from the apiserver; nil when absent.
func (r *CanaryReconciler) getFresh(ctx context.Context, key types.NamespacedName) (*appsv1.Deployment, error) {
	d, err := r.getDeployment(ctx, key.Namespace, key.Name)
	if d != nil || err != nil || r.APIReader == nil {
		return d, err
	}
	var fresh appsv1.Deployment
	if err := r.APIReader.Get(ctx, key, &fresh); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read deployment %s: %w", key, err)
	}
	return &fresh, nil
}

func (r *CanaryReconciler) getDeployment(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	var d appsv1.Deployment
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read deployment %s/%s: %w", ns, name, err)
	}
	return &d, nil
}

// configHashes reads the data hashes of the ConfigMaps and Secrets a
// template references. The cache keeps only the hash (see
// StripConfigData), not the data.
func (r *CanaryReconciler) configHashes(ctx context.Context, ns string, t *corev1.PodTemplateSpec) (map[string]string, error) {
	out := map[string]string{}
	for _, ref := range workload.ConfigRefs(t) {
		var obj client.Object = &corev1.ConfigMap{}
		kind, name, _ := strings.Cut(ref, "/")
		if kind == "secret" {
			obj = &corev1.Secret{}
		}
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("read %s %s/%s: %w", kind, ns, name, err)
		}
		out[ref] = workload.DataHashOf(obj)
	}
	return out, nil
}

// apply brings the cluster to the engine's desired state. Each write
// happens only when the object differs.
func (r *CanaryReconciler) apply(ctx context.Context, c *v1alpha1.Canary, s *scope, out engine.Output) error {
	d := out.Desired
	if s.target == nil {
		// Nothing to copy or scale, but a route that still sends
		// traffic to the deleted target's pods must return it.
		return r.applyRoute(ctx, c, s, d)
	}
	if d.PrimaryFromTarget || d.RestorePrimary || d.PrimaryReplicas != nil {
		if err := r.applyPrimary(ctx, c, s, d); err != nil {
			return err
		}
	}
	if d.Services {
		if err := r.applyServices(ctx, c, s.target); err != nil {
			return err
		}
	}
	if err := r.applyRoute(ctx, c, s, d); err != nil {
		return err
	}
	if err := r.applyAutoscaler(ctx, c, s, out); err != nil {
		return err
	}
	scale := d.TargetReplicas != nil && (s.target.Spec.Replicas == nil || *s.target.Spec.Replicas != *d.TargetReplicas)
	// With a router that tells the copies apart by a pod annotation
	// (Consul's service meta), the canary's pods carry their revision,
	// set with (and so before) any scale-up.
	meta := r.revisionAnnotation(c)
	tag := meta != "" && s.target.Spec.Template.Annotations[meta] != s.revision
	if scale || tag {
		patch := client.MergeFrom(s.target.DeepCopy())
		if scale {
			s.target.Spec.Replicas = d.TargetReplicas
		}
		if tag {
			if s.target.Spec.Template.Annotations == nil {
				s.target.Spec.Template.Annotations = map[string]string{}
			}
			s.target.Spec.Template.Annotations[meta] = s.revision
		}
		if err := r.Client.Patch(ctx, s.target, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
			return fmt.Errorf("patch deployment %s/%s (replicas, service meta): %w", s.target.Namespace, s.target.Name, err)
		}
	}
	return nil
}

// applyRoute makes the router carry the desired split, if one is desired.
func (r *CanaryReconciler) applyRoute(ctx context.Context, c *v1alpha1.Canary, s *scope, d engine.Desired) error {
	if d.CanaryWeight == nil {
		return nil
	}
	split := s.split
	split.CanaryWeight = *d.CanaryWeight
	split.HeaderRoute = d.HeaderRoute
	split.MirrorPercent = d.MirrorPercent
	if s.canaryBlocked {
		if !s.obs.Route.Exists {
			// No half-applied route: nothing is written until the
			// configuration is fixed, unless there is traffic to take
			// back.
			return nil
		}
		// The engine asks only for a withdrawal (see
		// Observations.BlockedWithdrawable): the canary's missing or
		// forbidden backends are left out of it.
		split.Canary = nil
	}
	seen := s.obs.Route
	s.routeChanged = !seen.Exists || seen.CanaryWeight != split.CanaryWeight ||
		seen.HeaderRoute != engine.HeaderRouteKey(split.HeaderRoute) || seen.MirrorPercent != split.MirrorPercent
	if err := s.route.Apply(ctx, c, split); err != nil {
		return err
	}
	if s.routeChanged {
		log.FromContext(ctx).V(1).Info("Route written", "weight", split.CanaryWeight, "seen", seen.CanaryWeight, "seenExists", seen.Exists)
	}
	return nil
}

// applyPrimary creates or updates the primary: from the target's template
// when asked, else only its replicas.
func (r *CanaryReconciler) applyPrimary(ctx context.Context, c *v1alpha1.Canary, s *scope, d engine.Desired) error {
	replicas := s.obs.ReleaseReplicas
	if d.PrimaryReplicas != nil {
		replicas = *d.PrimaryReplicas
	} else if s.primary != nil && s.primary.Spec.Replicas != nil {
		replicas = *s.primary.Spec.Replicas
	}
	set := fmt.Sprint(replicas)
	if d.RestorePrimary {
		want, err := r.restoredPrimary(ctx, c, s, c.Status.StableRevision, replicas)
		if err != nil {
			return err
		}
		return r.applyPrimaryObject(ctx, c, want, set)
	}
	if !d.PrimaryFromTarget {
		if s.primary == nil || (s.primary.Spec.Replicas != nil && *s.primary.Spec.Replicas == replicas && s.primary.Annotations[ReplicasAnnotation] == set) {
			return nil
		}
		patch := client.MergeFrom(s.primary.DeepCopy())
		s.primary.Spec.Replicas = &replicas
		if s.primary.Annotations == nil {
			s.primary.Annotations = map[string]string{}
		}
		s.primary.Annotations[ReplicasAnnotation] = set
		if err := r.Client.Patch(ctx, s.primary, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
			return fmt.Errorf("scale deployment %s/%s to %d: %w", s.primary.Namespace, s.primary.Name, replicas, err)
		}
		return nil
	}
	// Re-applied when someone changed the template (drift) even though
	// the revision it carries is right.
	if s.primary != nil && workload.PrimaryRevision(s.primary) == s.revision && s.obs.Drift == "" &&
		s.primary.Spec.Replicas != nil && *s.primary.Spec.Replicas == replicas && s.primary.Annotations[ReplicasAnnotation] == set {
		return nil
	}
	want, err := workload.Primary(c, s.target, s.revision, replicas, r.revisionAnnotation(c))
	if err != nil {
		return err
	}
	if err := r.isolateConfig(ctx, c, want, s.configHashes, true); err != nil {
		return err
	}
	return r.applyPrimaryObject(ctx, c, want, set)
}

// applyPrimaryObject server-side applies a built primary, noting the
// replicas Sluice set.
func (r *CanaryReconciler) applyPrimaryObject(ctx context.Context, c *v1alpha1.Canary, want *appsv1.Deployment, replicas string) error {
	want.Annotations[ReplicasAnnotation] = replicas
	if err := controllerutil.SetControllerReference(c, want, r.Scheme); err != nil {
		return fmt.Errorf("deployment %s/%s: owner: %w", want.Namespace, want.Name, err)
	}
	if err := r.Client.Patch(ctx, want, client.Apply, client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply deployment %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// applyServices creates or updates the apex, primary and canary Services
// (and a blue/green preview Service). An existing apex Service the user
// made is taken over: its selector moves to the primary pods, which are
// Ready by the time this runs (without a router the route sets it).
func (r *CanaryReconciler) applyServices(ctx context.Context, c *v1alpha1.Canary, target *appsv1.Deployment) error {
	svcs, err := workload.Services(c, target)
	if err != nil {
		return err
	}
	for _, want := range svcs {
		var have corev1.Service
		err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), &have)
		switch {
		case err == nil:
			if want.Name == workload.ServiceName(c) && c.Spec.Router.NoRouter() {
				// Without a router the apex Service's selector is the
				// route (internal/router/service sets it).
				want.Spec.Selector = have.Spec.Selector
			}
			if equality.Semantic.DeepEqual(have.Spec.Selector, want.Spec.Selector) &&
				servicePortsMatch(have.Spec.Ports, want.Spec.Ports) && have.Labels[workload.CanaryLabel] == c.Name {
				continue
			}
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("read service %s/%s: %w", want.Namespace, want.Name, err)
		}
		if err := controllerutil.SetControllerReference(c, want, r.Scheme); err != nil {
			return fmt.Errorf("service %s/%s: owner: %w", want.Namespace, want.Name, err)
		}
		if err := r.Client.Patch(ctx, want, client.Apply, client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply service %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	return nil
}

func servicePortsMatch(have, want []corev1.ServicePort) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range want {
		if have[i].Name != want[i].Name || have[i].Port != want[i].Port || have[i].TargetPort != want[i].TargetPort {
			return false
		}
	}
	return true
}

// holdStatus keeps the status decided unwritten when the Batcher allows it
// (statusbatch.Holdable) and the decision was applied, and returns when to
// look again: the decision's requeue, or when the hold ends.
func (r *CanaryReconciler) holdStatus(c *v1alpha1.Canary, out engine.Output, applied bool, now time.Time) (time.Duration, bool) {
	left, ok := r.status.Hold(client.ObjectKeyFromObject(c), c.ResourceVersion, c.Status, out.Status, out, applied, now)
	if !ok {
		return 0, false
	}
	if out.RequeueAfter > 0 && out.RequeueAfter < left {
		return out.RequeueAfter, true
	}
	return left, true
}

// recordStatus writes the status decided. An apply that failed (other than
// on a conflict, which only means the cache was behind) is reported as
// Ready=False with reason ApplyFailed and the error, and observedGeneration
// is left where it was: the spec is not in force yet.
func (r *CanaryReconciler) recordStatus(ctx context.Context, c *v1alpha1.Canary, out engine.Output, applyErr error, now time.Time) error {
	st := out.Status
	if applyErr != nil {
		st = *st.DeepCopy()
		st.ObservedGeneration = c.Status.ObservedGeneration
		if !apierrors.IsConflict(applyErr) {
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{
				Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonApplyFailed,
				Message: applyErr.Error(), ObservedGeneration: c.Generation, LastTransitionTime: metav1.NewTime(now),
			})
		}
	}
	written := c.Status
	if err := r.writeStatus(ctx, c, st); err != nil {
		return err
	}
	// Counted once the status that records it is written (a conflict
	// repeats the decision).
	r.observeVerification(c, written, st)
	r.observeCanary(c, written, st)
	return nil
}

// writeStatus patches the status when it changed; never otherwise.
func (r *CanaryReconciler) writeStatus(ctx context.Context, c *v1alpha1.Canary, st v1alpha1.CanaryStatus) error {
	if equality.Semantic.DeepEqual(c.Status, st) {
		return nil
	}
	patch := client.MergeFrom(c.DeepCopy())
	read := c.ResourceVersion
	c.Status = st
	if err := r.Client.Status().Patch(ctx, c, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("write status of canary %s/%s: %w", c.Namespace, c.Name, err)
	}
	r.status.Wrote(client.ObjectKeyFromObject(c), read, c.ResourceVersion)
	log.FromContext(ctx).V(1).Info("Status written", "phase", st.Phase, "reason", st.Reason, "step", st.CurrentStep, "weight", st.CanaryWeight)
	return nil
}
