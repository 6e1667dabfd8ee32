package controller

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/analysis/cloudwatch"
	"github.com/sluice-dev/sluice/internal/checks"
	"github.com/sluice-dev/sluice/internal/notify"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/webhook"
)

// NewScheme is the scheme of every kind the controller reads or writes
// through typed clients: Kubernetes' own, Sluice's and Gateway API's.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, gwv1.Install} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	return s, nil
}

// ManagerConfig is what differs between the places a controller is built:
// the sluice binary (from its flags), the controller's test suite and the
// end-to-end harness. Everything else is wired the same way by NewManager.
type ManagerConfig struct {
	// Manager carries the manager's own options (metrics and probe
	// addresses, leader election, ...). Scheme and Cache are filled in
	// when empty.
	Manager ctrl.Options
	// InstanceID keeps the controller to the Canaries labelled with it
	// (--instance-id); UnfilteredCaches caches every Deployment and
	// Service instead of those labelled sluice.dev/canary.
	InstanceID       string
	UnfilteredCaches bool
	// Namespaces, when set, keep the controller to the Canaries (and
	// every object it caches) in these namespaces (--watch-namespaces);
	// empty is every namespace.
	Namespaces []string
	// MetricsServer is the Prometheus of the builtin metrics, and
	// BuiltinMetrics their source (analysis.BuiltinAuto when empty).
	MetricsServer  string
	BuiltinMetrics string
	// MaxQueries bounds the metric queries in flight (16 when zero).
	MaxQueries int
	// Metrics, when set, are the controller's metrics, registered by the
	// caller (a process registers them once).
	Metrics *Metrics
	// RecorderName is the Events' reporting controller ("sluice" when
	// empty).
	RecorderName string
	// RouteSettle and TargetPoll: see CanaryReconciler.
	RouteSettle time.Duration
	TargetPoll  time.Duration
	// Routers are the routers the controller drives (routers.All()).
	Routers router.Registry
	// Options are the reconciler's (workers, retries).
	Options Options
}

// NewManager builds a manager with Sluice's caches and the Canary
// reconciler set up in it: its backend cache, its check runner, its
// watches. The caller adds probes if it wants them and starts the manager.
func NewManager(cfg *rest.Config, mc ManagerConfig) (ctrl.Manager, *CanaryReconciler, error) {
	if len(mc.Routers) == 0 {
		return nil, nil, fmt.Errorf("controller: no routers (ManagerConfig.Routers)")
	}
	opts := mc.Manager
	if opts.Scheme == nil {
		s, err := NewScheme()
		if err != nil {
			return nil, nil, err
		}
		opts.Scheme = s
	}
	if opts.Cache.ByObject == nil {
		c, err := CacheOptionsFiltered(mc.InstanceID, !mc.UnfilteredCaches)
		if err != nil {
			return nil, nil, err
		}
		opts.Cache = c
	}
	if len(mc.Namespaces) > 0 {
		opts.Cache.DefaultNamespaces = namespaceConfigs(mc.Namespaces)
	}
	// The main cache's and the router cache's informers report to one
	// Sight (the kinds the decisions read).
	sight := NewSight(nil)
	sight.Log = ctrl.Log.WithName("sight")
	if opts.Cache.NewInformer == nil {
		opts.Cache.NewInformer = sight.NewInformer
	}
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("create manager: %w", err)
	}
	backends, err := NewBackendCache(mgr)
	if err != nil {
		return nil, nil, err
	}
	routerCache, err := NewRouterCache(mgr, sight, !mc.UnfilteredCaches, mc.Namespaces)
	if err != nil {
		return nil, nil, err
	}
	maxQueries := mc.MaxQueries
	if maxQueries <= 0 {
		maxQueries = 16
	}
	recorder := mc.RecorderName
	if recorder == "" {
		recorder = "sluice"
	}
	// The check runner reads MetricTemplates from the cache and provider
	// credentials past it (the cache keeps Secrets without their data).
	querier := analysis.NewQuerier(maxQueries, nil)
	querier.Register(v1alpha1.ProviderCloudWatch, cloudwatch.New())
	runner := &checks.Runner{
		Reader:        mgr.GetClient(),
		SecretReader:  mgr.GetAPIReader(),
		MetricsServer: mc.MetricsServer,
		Querier:       querier,
		Judge:         analysis.NewJudge(),
		Hooks:         webhook.NewCaller(),
		Recorder:      mgr.GetEventRecorder(recorder),
		Routers:       mc.Routers,
	}
	if mc.BuiltinMetrics != "" {
		runner.BuiltinMetrics = mc.BuiltinMetrics
	}
	if mc.Metrics != nil {
		runner.Metrics = mc.Metrics.Checks
	}
	// Alerts are posted by their own workers: a slow chat service never
	// holds a check round or a reconcile.
	notifier := &notify.Notifier{Reader: mgr.GetClient(), SecretReader: mgr.GetAPIReader()}
	if mc.Metrics != nil {
		notifier.Metrics = mc.Metrics.Notify
	}
	if err := mgr.Add(notifier); err != nil {
		return nil, nil, fmt.Errorf("add the notifier: %w", err)
	}
	r := &CanaryReconciler{
		Notifier:    notifier,
		Metrics:     mc.Metrics,
		Client:      mgr.GetClient(),
		APIReader:   mgr.GetAPIReader(),
		Scheme:      mgr.GetScheme(),
		Recorder:    mgr.GetEventRecorder(recorder),
		Backends:    backends,
		RouterCache: routerCache,
		Checks:      runner,
		Routers:     mc.Routers,
		RouteSettle: mc.RouteSettle,
		TargetPoll:  mc.TargetPoll,
		Sight:       sight,
	}
	if err := r.SetupWithManager(mgr, mc.Options); err != nil {
		return nil, nil, err
	}
	return mgr, r, nil
}
