package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/startup"
)

// SluiceKinds are the kinds of api/v1alpha1 the controller reads: the
// Canaries it watches, their CanaryRevision records and the
// MetricTemplates of check rounds. The manager's caches cannot be built
// before the apiserver serves them.
func SluiceKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{
		v1alpha1.GroupVersion.WithKind("Canary"),
		v1alpha1.GroupVersion.WithKind("CanaryRevision"),
		v1alpha1.GroupVersion.WithKind("MetricTemplate"),
		v1alpha1.GroupVersion.WithKind("AlertProvider"),
	}
}

// probesStopTimeout bounds the wait for probe requests in flight when Run
// returns.
const probesStopTimeout = 5 * time.Second

// Run runs a controller the way the sluice binary does, until ctx ends.
// It serves /healthz and /readyz at mc.Manager.HealthProbeBindAddress at
// once, waits until the apiserver serves every one of kinds (SluiceKinds;
// a test adds its own), then builds the manager (NewManager) and starts
// it. /healthz passes throughout; /readyz fails, naming the kinds still
// missing, until the manager has built its controllers and synced its
// caches (on a standby replica too). A ctx that ends while Run waits is a
// clean stop: Run returns nil.
func Run(ctx context.Context, cfg *rest.Config, mc ManagerConfig, kinds []schema.GroupVersionKind) error {
	log := mc.Manager.Logger
	if log.GetSink() == nil {
		log = ctrl.Log
	}
	log = log.WithName("startup")
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("discovery client: %w", err)
	}
	w := &startup.Waiter{Kinds: kinds, Lookup: startup.Discovery(dc.RESTClient()), Log: log}
	probes, err := startup.ServeProbes(mc.Manager.HealthProbeBindAddress,
		map[string]healthz.Checker{"ping": healthz.Ping},
		map[string]healthz.Checker{"ping": healthz.Ping, "kinds": w.Check})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probesStopTimeout)
		defer cancel()
		if err := probes.Stop(sctx); err != nil {
			log.Error(err, "Stopping the health probes")
		}
	}()
	if err := w.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			log.Info("Stopped while waiting for kinds to be served")
			return nil
		}
		return err
	}
	// The probes are this function's; the manager serves none of its own.
	mc.Manager.HealthProbeBindAddress = "0"
	mgr, _, err := NewManager(cfg, mc)
	if err != nil {
		return err
	}
	if err := mgr.Add(markReady{w}); err != nil {
		return fmt.Errorf("readiness: %w", err)
	}
	return mgr.Start(ctx)
}

// markReady passes the readiness check when the manager starts it: after
// its caches have synced, and on every replica, leader or not.
type markReady struct{ w *startup.Waiter }

func (m markReady) Start(context.Context) error {
	m.w.MarkReady()
	return nil
}

// NeedLeaderElection is false: a standby replica is ready too.
func (markReady) NeedLeaderElection() bool { return false }
