package testenv

import (
	"context"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sluice-dev/sluice/internal/controller"
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
