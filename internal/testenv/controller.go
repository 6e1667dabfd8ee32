package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/config"
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
	mc.Manager.Metrics = metricsserver.Options{BindAddress: "0"}
	mc.Manager.HealthProbeBindAddress = "0"
	mc.Manager.GracefulShutdownTimeout = ptr.To(10 * time.Second)
	mc.Manager.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	mgr, _, err := controller.NewManager(cfg, mc)
	if err != nil {
		t.Fatalf("controller %s: %v", mc.InstanceID, err)
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
