package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/routers"
)

// StartController runs one more Sluice controller in the test process
// (controller.NewManager with mc), for the Canaries of mc.InstanceID, and
// stops it when the test ends, failing the test if it stopped with an
// error. It serves no metrics or probes, gives up in 10 s when stopped,
// and may share the process with another controller of the same name.
func StartController(t testing.TB, cfg *rest.Config, mc controller.ManagerConfig) {
	t.Helper()
	startController(t, cfg, mc, nil)
}

// StartControllerServingMetrics runs a controller as StartController does
// and serves its metrics as the sluice binary does: controller-runtime's
// metrics server (plain HTTP, /metrics from metrics.Registry, so every
// metric of the test process) run by the manager, here on a free loopback
// port. It returns the endpoint's base URL (http://127.0.0.1:port) once the
// server listens.
//
// The server is made here and added to the manager instead of being left
// to the manager (Metrics.BindAddress "127.0.0.1:0"), because a manager
// does not say which port its own server got; the server is the same
// (metricsserver.NewServer) and runs until the manager stops.
func StartControllerServingMetrics(t testing.TB, cfg *rest.Config, mc controller.ManagerConfig) string {
	t.Helper()
	srv, err := metricsserver.NewServer(metricsserver.Options{BindAddress: "127.0.0.1:0"}, cfg, nil)
	if err != nil {
		t.Fatalf("metrics server of controller %s: %v", mc.InstanceID, err)
	}
	bound, ok := srv.(interface{ GetBindAddr() string })
	if !ok {
		t.Fatalf("controller-runtime's metrics server (%T) no longer tells its address", srv)
	}
	startController(t, cfg, mc, srv)
	var addr string
	Eventually(t, 30*time.Second, "metrics server of controller "+mc.InstanceID+" listening", func(context.Context) error {
		if addr = bound.GetBindAddr(); addr == "" {
			return errors.New("not listening yet")
		}
		return nil
	})
	return "http://" + addr
}

// startController builds the manager, adds extra to it when not nil, and
// runs it until the test ends.
func startController(t testing.TB, cfg *rest.Config, mc controller.ManagerConfig, extra manager.Runnable) {
	t.Helper()
	mc.Manager.Metrics = metricsserver.Options{BindAddress: "0"}
	mc.Manager.HealthProbeBindAddress = "0"
	mc.Manager.GracefulShutdownTimeout = ptr.To(10 * time.Second)
	mc.Manager.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	mgr, _, err := controller.NewManager(cfg, mc)
	if err != nil {
		t.Fatalf("controller %s: %v", mc.InstanceID, err)
	}
	if extra != nil {
		if err := mgr.Add(extra); err != nil {
			t.Fatalf("controller %s: %v", mc.InstanceID, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("controller %s: %v", mc.InstanceID, err)
		}
	})
}

// StartInstance runs a controller as an install does (the cluster's
// ControllerConfig, every router, 2 workers, a 2 s target poll, logs
// discarded) for the Canaries labelled controller.InstanceLabel with the
// instance id it returns (name and the process id), until the test ends.
func (c *Cluster) StartInstance(t testing.TB, name string) string {
	t.Helper()
	ctrl.SetLogger(logr.Discard())
	instance := fmt.Sprintf("%s-%d", name, os.Getpid())
	scheme, err := controller.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	StartController(t, c.ControllerConfig(t), controller.ManagerConfig{
		Manager:      ctrl.Options{Scheme: scheme},
		InstanceID:   instance,
		RecorderName: "sluice-" + name + "-test",
		TargetPoll:   2 * time.Second,
		Options:      controller.Options{Workers: 2},
		Routers:      routers.All(),
	})
	return instance
}
