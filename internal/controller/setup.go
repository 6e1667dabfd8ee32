package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/statusbatch"
	"github.com/sluice-dev/sluice/internal/workload"
)

// targetIndex indexes Canaries by the name of their target Deployment.
const targetIndex = "spec.targetRef.name"

// InstanceLabel shards Canaries between controllers: a controller started
// with --instance-id=X handles only Canaries labelled sluice.dev/instance=X;
// one started without it handles only Canaries without the label.
const InstanceLabel = "sluice.dev/instance"

// CacheOptions are the informer settings the manager must use: Canaries of
// this instance only; Deployments, Services, HTTPRoutes and records
// selected by the sluice.dev/canary label (the objects Sluice generates,
// and the targets, which Sluice labels when it first reads them);
// ConfigMaps and Secrets kept as a hash of their data, never the data
// itself; managed fields dropped everywhere; Canaries, Deployments and
// Services trimmed to what reconciles read. The transforms are in
// cachetrim.go.
func CacheOptions(instanceID string) (cache.Options, error) {
	return CacheOptionsFiltered(instanceID, true)
}

// CacheOptionsFiltered is CacheOptions; with filter false, Deployments,
// Services and HTTPRoutes are cached whatever their labels, as a
// controller without label selectors would (--filter-caches=false: only
// to measure what the filter saves).
func CacheOptionsFiltered(instanceID string, filter bool) (cache.Options, error) {
	ownedSel, err := ownedSelector()
	if err != nil {
		return cache.Options{}, err
	}
	inst, err := labels.NewRequirement(InstanceLabel, selection.DoesNotExist, nil)
	if instanceID != "" {
		inst, err = labels.NewRequirement(InstanceLabel, selection.Equals, []string{instanceID})
	}
	if err != nil {
		return cache.Options{}, fmt.Errorf("--instance-id %q: %w", instanceID, err)
	}
	// The selector that keeps only what belongs to a Canary; nil (every
	// object) when the filter is off.
	var byLabel labels.Selector
	if filter {
		byLabel = ownedSel
	}
	byObject := map[client.Object]cache.ByObject{
		&v1alpha1.Canary{}:         {Label: labels.NewSelector().Add(*inst), Transform: StripCanary},
		&v1alpha1.CanaryRevision{}: {Label: ownedSel, Transform: StripRecordTemplate},
		&corev1.ConfigMap{}:        {Transform: StripConfigData},
		&corev1.Secret{}:           {Transform: StripConfigData},
		&appsv1.Deployment{}:       {Label: byLabel, Transform: StripDeployment},
		&corev1.Service{}:          {Label: byLabel, Transform: StripService},
	}
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject:         byObject,
	}, nil
}

// ownedSelector selects the objects labelled sluice.dev/canary.
func ownedSelector() (labels.Selector, error) {
	owned, err := labels.NewRequirement(workload.CanaryLabel, selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("selector %s: %w", workload.CanaryLabel, err)
	}
	return labels.NewSelector().Add(*owned), nil
}

// NewBackendCache makes the reader that answers "does this backend
// exist?" for user-supplied backendRefs: a cache of object metadata only
// (PartialObjectMetadata), with no label filter, since a user's backend is
// not labelled by Sluice; an informer starts for a kind on its first use.
// The cache runs with the manager. Before a kind's first read the reader
// asks the apiserver whether the controller may list and watch it
// cluster-wide: an informer without both would never sync, and the read
// would wait on it for ever, holding a reconcile worker. A kind it may not
// read is answered with a router.KindForbiddenError; any read waits at most
// BackendSyncTimeout for its informer. Its informers do not report to the
// Sight: a user's backend may be of a kind an aggregated apiserver serves,
// and one that answers 503 for good must not pause every progress deadline.
func NewBackendCache(mgr ctrl.Manager) (client.Reader, error) {
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("backend cache: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("backend cache: %w", err)
	}
	return &backendReader{cache: c, scheme: mgr.GetScheme(), mapper: mgr.GetRESTMapper(), reviews: mgr.GetClient(),
		allowed: map[schema.GroupVersionResource]bool{}}, nil
}

// BackendSyncTimeout bounds the wait for a backend kind's informer to
// sync; past it the read fails (and the reconcile is retried) instead of
// holding its worker.
const BackendSyncTimeout = 10 * time.Second

// accessReviewTimeout bounds one SelfSubjectAccessReview.
const accessReviewTimeout = 10 * time.Second

// backendReader reads backends from the metadata cache once the
// controller is known to be allowed to list and watch their kind.
type backendReader struct {
	cache  cache.Cache
	scheme *runtime.Scheme
	mapper meta.RESTMapper
	// reviews creates SelfSubjectAccessReviews.
	reviews client.Client

	mu sync.Mutex
	// allowed holds the resources the controller may list and watch. A
	// denial is not remembered: the Canary stalls and is looked at again
	// (engine.BlockedRecheckInterval), and a granted permission is found
	// then.
	allowed map[schema.GroupVersionResource]bool
}

// Get reads a backend's metadata, or says why it cannot be read.
func (b *backendReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := b.mayRead(ctx, obj); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, BackendSyncTimeout)
	defer cancel()
	return b.cache.Get(ctx, key, obj, opts...)
}

// List lists backends, under the same conditions as Get.
func (b *backendReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := b.mayRead(ctx, list); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, BackendSyncTimeout)
	defer cancel()
	return b.cache.List(ctx, list, opts...)
}

// mayRead returns a router.KindForbiddenError when the controller may not
// list or watch obj's kind cluster-wide, asking the apiserver (a
// SelfSubjectAccessReview per verb) until it may.
func (b *backendReader) mayRead(ctx context.Context, obj runtime.Object) error {
	gvk, err := apiutil.GVKForObject(obj, b.scheme)
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	m, err := b.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("backend kind %s: %w", gvk, err)
	}
	gvr := m.Resource
	b.mu.Lock()
	ok := b.allowed[gvr]
	b.mu.Unlock()
	if ok {
		return nil
	}
	var missing []string
	for _, verb := range []string{"list", "watch"} {
		allowed, err := b.review(ctx, verb, gvr)
		if apierrors.IsForbidden(err) {
			// The controller may not even ask (its ClusterRole lacks
			// selfsubjectaccessreviews, and the cluster does not grant
			// them to every user): the bounded wait for the informer is
			// all that is left.
			log.FromContext(ctx).Error(err, "Cannot review access to a backend kind; reading it anyway", "resource", gvr.String())
			allowed, err = true, nil
		}
		if err != nil {
			return err
		}
		if !allowed {
			missing = append(missing, verb)
		}
	}
	if len(missing) > 0 {
		return &router.KindForbiddenError{Group: gvk.Group, Kind: gvk.Kind, Resource: gvr.GroupResource().String(), Verbs: missing}
	}
	b.mu.Lock()
	b.allowed[gvr] = true
	b.mu.Unlock()
	return nil
}

// review asks whether the controller may use verb on gvr in every
// namespace.
func (b *backendReader) review(ctx context.Context, verb string, gvr schema.GroupVersionResource) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, accessReviewTimeout)
	defer cancel()
	r := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource},
	}}
	if err := b.reviews.Create(ctx, r); err != nil {
		return false, fmt.Errorf("review access to %s %s: %w", verb, gvr.GroupResource(), err)
	}
	return r.Status.Allowed, nil
}

// Defaults of the retry queue (the flags --retry-*), chosen with the
// scale benchmark (docs/performance.md).
const (
	DefaultRetryBase  = 100 * time.Millisecond
	DefaultRetryMax   = 2 * time.Minute
	DefaultRetryQPS   = 50
	DefaultRetryBurst = 500
)

// Options tune the controller.
type Options struct {
	// Workers is the number of Canaries reconciled at once.
	Workers int
	// RetryBase and RetryMax bound the per-Canary exponential delay
	// after failed reconciles; RetryQPS and RetryBurst bound the retries
	// over all Canaries. Zero values take the defaults.
	RetryBase, RetryMax time.Duration
	RetryQPS            float64
	RetryBurst          int
}

// rateLimiter is the work queue's limiter for failed reconciles: the
// slower of a per-Canary exponential delay and a shared token bucket.
func (o Options) rateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	base, maxDelay, qps, burst := o.RetryBase, o.RetryMax, o.RetryQPS, o.RetryBurst
	if base <= 0 {
		base = DefaultRetryBase
	}
	if maxDelay <= 0 {
		maxDelay = DefaultRetryMax
	}
	if qps <= 0 {
		qps = DefaultRetryQPS
	}
	if burst <= 0 {
		burst = DefaultRetryBurst
	}
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](base, maxDelay),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(qps), burst)},
	)
}

// SetupWithManager registers the reconciler, its index and its watches.
func (r *CanaryReconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if r.Client == nil || r.Scheme == nil || r.Recorder == nil || r.Backends == nil || r.Checks == nil || len(r.Routers) == 0 {
		return fmt.Errorf("canary reconciler: Client, Scheme, Recorder, Backends, Checks and Routers are required")
	}
	r.status.Limit = r.RouteSettle + statusbatch.Slack
	if err := mgr.Add(r.Checks); err != nil {
		return fmt.Errorf("check runner: %w", err)
	}
	ctx := context.Background()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Canary{}, targetIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Canary).Spec.TargetRef.Name}
	}); err != nil {
		return fmt.Errorf("index canaries by target: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Canary{}, routerRefIndex, r.routerRefs); err != nil {
		return fmt.Errorf("index canaries by router objects: %w", err)
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Canary{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.canariesForTarget)).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.canariesForConfig("configmap"))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.canariesForConfig("secret"))).
		Watches(&gwv1.ReferenceGrant{}, handler.EnqueueRequestsFromMapFunc(r.canariesWithBackendRefs)).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.EnqueueRequestsFromMapFunc(r.canariesForAutoscaler)).
		WatchesRawSource(source.Channel(r.Checks.Events(), &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.Workers, RateLimiter: opts.rateLimiter()}).
		Build(r)
	if err != nil {
		return fmt.Errorf("canary controller: %w", err)
	}
	if r.RouterCache != nil {
		r.watches = &routerWatches{ctrl: c, cache: r.RouterCache, mapper: mgr.GetRESTMapper(), scheme: mgr.GetScheme(),
			handler: handler.EnqueueRequestsFromMapFunc(r.canariesForRouterObject), watching: map[schema.GroupKind]schema.GroupVersionKind{}}
	}
	return nil
}

// canariesForTarget maps a Deployment to the Canaries that target it.
func (r *CanaryReconciler) canariesForTarget(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.CanaryList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{targetIndex: o.GetName()}); err != nil {
		return nil
	}
	return requests(list.Items)
}

// canariesForConfig maps a ConfigMap or Secret to the Canaries whose target
// references it.
func (r *CanaryReconciler) canariesForConfig(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.CanaryList
		if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		ref := kind + "/" + o.GetName()
		var hit []v1alpha1.Canary
		for _, c := range list.Items {
			var d appsv1.Deployment
			key := types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.TargetRef.Name}
			if r.Client.Get(ctx, key, &d) == nil && slices.Contains(workload.ConfigRefs(&d.Spec.Template), ref) {
				hit = append(hit, c)
			}
		}
		return requests(hit)
	}
}

// canariesForAutoscaler maps an HPA to the Canaries whose primary or
// target it scales (an HPA decides whether a replica change is drift, and
// spec.autoscalerRef's is copied to the primary).
func (r *CanaryReconciler) canariesForAutoscaler(ctx context.Context, o client.Object) []reconcile.Request {
	h, ok := o.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok || h.Spec.ScaleTargetRef.Kind != "Deployment" {
		return nil
	}
	target, _ := strings.CutSuffix(h.Spec.ScaleTargetRef.Name, workload.PrimarySuffix)
	var list v1alpha1.CanaryList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{targetIndex: target}); err != nil {
		return nil
	}
	return requests(list.Items)
}

// canariesWithBackendRefs maps a ReferenceGrant change to every Canary with
// user-supplied backends (grants are rare; Canaries using them rarer).
func (r *CanaryReconciler) canariesWithBackendRefs(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.CanaryList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil
	}
	var hit []v1alpha1.Canary
	for _, c := range list.Items {
		if c.Spec.Service.BackendRefs != nil {
			hit = append(hit, c)
		}
	}
	return requests(hit)
}

func requests(cs []v1alpha1.Canary) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(cs))
	for _, c := range cs {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}})
	}
	return out
}

// namespaceConfigs is a cache's DefaultNamespaces for --watch-namespaces:
// nil (every namespace) when there are none.
func namespaceConfigs(namespaces []string) map[string]cache.Config {
	if len(namespaces) == 0 {
		return nil
	}
	out := make(map[string]cache.Config, len(namespaces))
	for _, ns := range namespaces {
		out[ns] = cache.Config{}
	}
	return out
}
