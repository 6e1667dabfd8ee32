// Command sluice is the Sluice controller manager.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/kubeapi"
	"github.com/sluice-dev/sluice/internal/memlimit"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/routers"
	"github.com/sluice-dev/sluice/internal/version"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	flag.StringVar(&cfg.probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	flag.BoolVar(&cfg.leaderElect, "leader-elect", false, "elect a leader with a Lease so that only one replica acts")
	flag.StringVar(&cfg.leaderElectNS, "leader-election-namespace", "", "namespace of the leader Lease (default: the pod's namespace)")
	flag.DurationVar(&cfg.leaseDuration, "leader-election-lease-duration", 15*time.Second, "how long standbys wait after the leader's last renewal before taking the Lease: a leader that dies without giving it up is replaced after about this long (docs/chaos.md)")
	flag.DurationVar(&cfg.renewDeadline, "leader-election-renew-deadline", 10*time.Second, "how long the leader keeps trying to renew the Lease before it stops acting (and exits); shorter than the lease duration")
	flag.DurationVar(&cfg.retryPeriod, "leader-election-retry-period", 2*time.Second, "how often replicas try to take or renew the Lease")
	flag.IntVar(&cfg.workers, "workers", 16, "Canaries reconciled concurrently (docs/performance.md: how the default was chosen)")
	flag.Float64Var(&cfg.qps, "kube-api-qps", 300, "client-side rate limit to the apiserver (requests/s)")
	flag.IntVar(&cfg.burst, "kube-api-burst", 600, "client-side burst to the apiserver")
	flag.StringVar(&cfg.metricsServer, "metrics-server", "", "Prometheus URL for the builtin metrics (request-success-rate, request-duration)")
	flag.StringVar(&cfg.builtinMetrics, "builtin-metrics", analysis.BuiltinAuto, "source of the builtin metrics: auto (a router's own series for the Canaries it routes: Traefik's traefik_service_*, Istio's istio_requests_total; else app), app (the app's own http_requests_total and http_request_duration_seconds), envoy (the Envoy upstream-cluster stats of the canary Service, from an Envoy-based Gateway API implementation), traefik or istio")
	flag.IntVar(&cfg.maxQueries, "max-concurrent-queries", 16, "metric queries in flight at once, over all providers")
	flag.DurationVar(&cfg.routeSettle, "route-settle", controller.DefaultRouteSettle, "how long a proxy is given to load a route after it is read back (and accepted), before a step counts as applied or a copy is scaled down; 0 disables it")
	flag.StringVar(&cfg.pprofAddr, "pprof-bind-address", "0", "address of the pprof endpoints (/debug/pprof/...; 0 disables them)")
	flag.BoolVar(&cfg.filterCaches, "filter-caches", true, "cache only the Deployments, Services and HTTPRoutes labelled sluice.dev/canary (Sluice's own and the targets it labels); false caches all of them, only to measure what the filter saves")
	flag.DurationVar(&cfg.retryBase, "retry-base-delay", controller.DefaultRetryBase, "first delay before a Canary whose reconcile failed is tried again; it doubles with each failure in a row")
	flag.DurationVar(&cfg.retryMax, "retry-max-delay", controller.DefaultRetryMax, "longest delay between tries of a Canary whose reconciles keep failing")
	flag.Float64Var(&cfg.retryQPS, "retry-qps", controller.DefaultRetryQPS, "retries of failed reconciles allowed per second over all Canaries (a token bucket; requeues for pauses and deadlines are not limited)")
	flag.IntVar(&cfg.retryBurst, "retry-burst", controller.DefaultRetryBurst, "burst of the retry token bucket")
	flag.Float64Var(&cfg.memRatio, "memory-limit-ratio", 0.9, "set the Go runtime's soft memory limit to this share of the container's memory limit (cgroup memory.max), so that the garbage collector works harder near the limit instead of the container being killed; 0 disables it, and GOMEMLIMIT overrides it")
	flag.IntVar(&cfg.gcPercent, "gc-percent", 50, "the Go garbage collector's target (GOGC): the heap may grow this many percent over what is live before a collection; lower holds less memory for more CPU in busy periods (docs/performance.md: how the default was chosen); 0 keeps the runtime's 100, and GOGC overrides it")
	flag.StringVar(&cfg.watchNamespaces, "watch-namespaces", "", "handle only the Canaries in these namespaces, comma-separated, and cache nothing outside them (default: every namespace); a MetricTemplate a Canary names must be in one of them too")
	flag.StringVar(&cfg.instanceID, "instance-id", "", "handle only Canaries labelled sluice.dev/instance=<id> (default: only Canaries without that label)")
	showVersion := flag.Bool("version", false, "print the version and commit this binary was built from, and exit")
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	v := version.Get()
	if *showVersion {
		fmt.Println("sluice " + v.String())
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	log.Info("Sluice", "version", v.Version, "commit", v.Commit)
	soft, why, err := memlimit.Apply("/sys/fs/cgroup", cfg.memRatio, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log.Info("Go memory limit", "bytes", soft, "from", why)
	gc, why, err := memlimit.GCPercent(cfg.gcPercent, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log.Info("Go GC percent", "percent", gc, "from", why)

	if sources := builtinSources(routers.All()); !slices.Contains(sources, cfg.builtinMetrics) {
		fmt.Fprintf(os.Stderr, "--builtin-metrics=%q: use one of %s\n", cfg.builtinMetrics, strings.Join(sources, ", "))
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		log.Error(err, "Manager stopped")
		os.Exit(1)
	}
}

// builtinSources are the values --builtin-metrics takes: auto, the
// catalog's sources, and the routers with builtin queries of their own.
func builtinSources(rs router.Registry) []string {
	out := []string{analysis.BuiltinAuto, analysis.BuiltinApp, analysis.BuiltinEnvoy}
	for _, r := range rs {
		if r.BuiltinQueries != nil {
			out = append(out, r.Name)
		}
	}
	return out
}

// config is the command line.
type config struct {
	metricsAddr, probeAddr string
	leaderElect            bool
	leaderElectNS          string
	leaseDuration          time.Duration
	renewDeadline          time.Duration
	retryPeriod            time.Duration
	workers                int
	qps                    float64
	burst                  int
	instanceID             string
	watchNamespaces        string
	metricsServer          string
	builtinMetrics         string
	maxQueries             int
	routeSettle            time.Duration
	pprofAddr              string
	filterCaches           bool
	retryBase, retryMax    time.Duration
	retryQPS               float64
	retryBurst             int
	memRatio               float64
	gcPercent              int
}

func run(c config) error {
	metricsAddr, probeAddr, leaderElect, leaderElectNS := c.metricsAddr, c.probeAddr, c.leaderElect, c.leaderElectNS
	workers, qps, burst, instanceID := c.workers, c.qps, c.burst, c.instanceID
	rest, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	rest.QPS, rest.Burst = float32(qps), burst
	requests := kubeapi.NewRequests()
	if err := requests.Register(metrics.Registry); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	rest.Wrap(requests.Wrap)
	leaderID := "sluice-controller.sluice.dev"
	if instanceID != "" {
		leaderID = instanceID + "." + leaderID
	}
	m := controller.NewMetrics()
	if err := m.Register(nil); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	mc := controller.ManagerConfig{
		Manager: ctrl.Options{
			Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
			HealthProbeBindAddress:  probeAddr,
			PprofBindAddress:        c.pprofAddr,
			LeaderElection:          leaderElect,
			LeaderElectionID:        leaderID,
			LeaderElectionNamespace: leaderElectNS,
			LeaseDuration:           &c.leaseDuration,
			RenewDeadline:           &c.renewDeadline,
			RetryPeriod:             &c.retryPeriod,
			// A stopping leader gives the Lease up at once, so a standby
			// takes over in seconds instead of waiting for the Lease to
			// expire.
			LeaderElectionReleaseOnCancel: true,
		},
		InstanceID:       instanceID,
		Namespaces:       splitList(c.watchNamespaces),
		UnfilteredCaches: !c.filterCaches,
		MetricsServer:    c.metricsServer,
		BuiltinMetrics:   c.builtinMetrics,
		MaxQueries:       c.maxQueries,
		Metrics:          m,
		Routers:          routers.All(),
		RouteSettle:      c.routeSettle,
		Options: controller.Options{Workers: workers,
			RetryBase: c.retryBase, RetryMax: c.retryMax, RetryQPS: c.retryQPS, RetryBurst: c.retryBurst},
	}
	// The probes answer at once; the controllers are built once the
	// apiserver serves Sluice's kinds (the CRDs may arrive after us).
	return controller.Run(ctrl.SetupSignalHandler(), rest, mc, controller.SluiceKinds())
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
