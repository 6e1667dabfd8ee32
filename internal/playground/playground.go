// Package playground is `make demo`: on the local control plane it starts
// a real data plane (Traefik, the service responder, Prometheus), the
// controller (bin/sluice) and steady traffic, installs a demo app with a
// Canary, and shows a good release promoted and a bad one rolled back,
// live, with the traffic each version really served.
package playground

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/dataplane"
)

// Fixed addresses, so that the instructions printed (and a second
// terminal) can use them.
const (
	Namespace   = "playground"
	App         = "podinfo"
	Host        = "podinfo.localhost"
	WebAddr     = "127.0.0.1:18000"
	TraefikAdm  = "127.0.0.1:18001"
	PromAddr    = "127.0.0.1:19090"
	SluiceAddr  = "127.0.0.1:18080"
	SluiceProbe = "127.0.0.1:18081"
	// Rate is the demo's steady traffic, requests per second.
	Rate = 50
)

// Options locate the repository's built pieces.
type Options struct {
	// Root is the repository root: bin/ and .local/ are under it.
	Root string
	// Out receives the show; TTY redraws it in place.
	Out io.Writer
	TTY bool
	// Stay keeps everything running after the releases until ctx ends.
	Stay bool
	// Scenario is how the demo app is released: ScenarioCanary (the
	// default) or ScenarioBlueGreen.
	Scenario string
}

// Scenarios of the playground.
const (
	// ScenarioCanary walks 10, 30, 60% with Traefik's metrics judging
	// each step.
	ScenarioCanary = "canary"
	// ScenarioBlueGreen previews the new version (one replica, no
	// traffic), switches all traffic at once, and judges it for the
	// scale-down delay with the old version kept: the bad one is switched
	// back.
	ScenarioBlueGreen = "blue-green"
)

// strategies are the Canary's spec.strategy per scenario.
var strategies = map[string]string{
	ScenarioCanary: `  strategy:
    steps:
    - setWeight: 10
    - pause: {duration: 10s}
    - setWeight: 30
    - pause: {duration: 10s}
    - setWeight: 60
    - pause: {duration: 10s}
`,
	ScenarioBlueGreen: `  strategy:
    blueGreen:
      previewReplicaCount: 1
      autoPromotionSeconds: 10
      scaleDownDelay: 30s
`,
}

func (o Options) path(parts ...string) string {
	return filepath.Join(append([]string{o.Root}, parts...)...)
}

// Summary is the outcome of a run.
type Summary struct {
	Releases []ReleaseSummary
}

// ReleaseSummary is one release's outcome.
type ReleaseSummary struct {
	Version  string
	Phase    v1alpha1.CanaryPhase
	Message  string
	Took     time.Duration
	Requests int
	// Failures are requests users saw fail (anything but 200) while the
	// release ran.
	Failures int
	// Served is how many of them the release's version answered.
	Served int
}

// Run runs the playground until both releases ended or ctx is cancelled,
// then stops everything it started (the cluster keeps running).
func Run(ctx context.Context, o Options) (*Summary, error) {
	t0 := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, addr := range []string{WebAddr, TraefikAdm, PromAddr, SluiceAddr, SluiceProbe} {
		if err := free(addr); err != nil {
			return nil, fmt.Errorf("%s is taken (is another `make demo` running? it stops with Ctrl-C): %w", addr, err)
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.path(".local", "kubeconfig"))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig (is the local cluster up? make cluster): %w", err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	s := &show{out: o.Out, tty: o.TTY, cl: cl}
	s.say("a clean slate: namespace %s", Namespace)
	if err := reset(ctx, cl); err != nil {
		return nil, err
	}

	dir := o.path(".local", "playground")
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "prometheus"), 0o755); err != nil {
		return nil, err
	}
	s.say("starting Traefik (%s), Prometheus (%s), the service responder and the controller", WebAddr, PromAddr)
	tr, err := startTraefik(ctx, o, cfg)
	if err != nil {
		return nil, err
	}
	defer tr.Stop()
	prom, err := dataplane.StartPrometheus(ctx, prometheusBinary(), filepath.Join(dir, "prometheus"), PromAddr, time.Second,
		fmt.Sprintf("  - job_name: traefik\n    static_configs:\n      - targets: [%q]\n", TraefikAdm))
	if err != nil {
		return nil, err
	}
	defer prom.Stop()
	kubeconfig := filepath.Join(dir, "sluice.kubeconfig")
	if err := controllerKubeconfig(ctx, o, cfg, kubeconfig); err != nil {
		return nil, fmt.Errorf("the controller's ServiceAccount: %w", err)
	}
	stopCtrl, err := startController(ctx, o, kubeconfig, prom.URL)
	if err != nil {
		return nil, err
	}
	defer stopCtrl()
	if _, err := dataplane.StartResponder(ctx, cfg, Namespace); err != nil {
		return nil, err
	}

	strategy, ok := strategies[o.scenario()]
	if !ok {
		return nil, fmt.Errorf("scenario %q: choose %s or %s", o.Scenario, ScenarioCanary, ScenarioBlueGreen)
	}
	s.say("installing the demo app: Deployment %s (2 replicas, version 6.7.0), your IngressRoute, and a Canary (%s)", App, o.scenario())
	if err := install(ctx, cl, manifests+strategy); err != nil {
		return nil, err
	}
	if _, err := s.until(ctx, "", v1alpha1.PhaseInitialized); err != nil {
		return nil, err
	}
	s.load = dataplane.StartLoad("http://"+WebAddr, Rate, dataplane.Stream{Name: "demo", Header: map[string][]string{"Host": {Host}}})
	defer s.load.Stop()
	if err := s.serving(ctx, "6.7.0"); err != nil {
		return nil, err
	}

	sum := &Summary{}
	for _, r := range []struct {
		version, what string
		errRate       float64
	}{
		{"6.7.1", o.goodStory(), 0},
		{"6.7.2", o.badStory(), 0.3},
	} {
		s.say("release %s: %s", r.version, r.what)
		rs, err := s.release(ctx, cl, r.version, r.errRate)
		if err != nil {
			return sum, err
		}
		sum.Releases = append(sum.Releases, *rs)
	}
	PrintSummary(o.Out, o.Root, sum, time.Since(t0), o.Stay)
	if o.Stay {
		<-ctx.Done()
	}
	return sum, nil
}

func free(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

func prometheusBinary() string {
	if p := os.Getenv("PROMETHEUS"); p != "" {
		return p
	}
	return "/usr/bin/prometheus"
}

func startTraefik(ctx context.Context, o Options, cfg *rest.Config) (*dataplane.Traefik, error) {
	ca := cfg.CAFile
	if ca == "" {
		ca = o.path(".local", "playground", "ca.crt")
		if err := os.WriteFile(ca, cfg.CAData, 0o600); err != nil {
			return nil, err
		}
	}
	return dataplane.StartTraefik(ctx, dataplane.TraefikOptions{Bin: o.path("bin", "traefik"), APIServer: cfg.Host,
		Token: cfg.BearerToken, CAFile: ca, Namespaces: []string{Namespace}, WebAddr: WebAddr, AdminAddr: TraefikAdm})
}

// startController runs bin/sluice with kubeconfig (its ServiceAccount's),
// logging to .local/logs/sluice.log.
func startController(ctx context.Context, o Options, kubeconfig, promURL string) (func(), error) {
	logPath := o.path(".local", "logs", "sluice.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, o.path("bin", "sluice"), "--kubeconfig", kubeconfig,
		"--metrics-bind-address", SluiceAddr, "--health-probe-bind-address", SluiceProbe, "--metrics-server", promURL)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start bin/sluice (make build): %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = log.Close(); close(exited) }()
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}, nil
}

// reset deletes the namespace of an earlier run, releasing its Canaries'
// finalizers first (no controller may be running to do it).
func reset(ctx context.Context, cl client.Client) error {
	var cs v1alpha1.CanaryList
	if err := cl.List(ctx, &cs, client.InNamespace(Namespace)); err == nil {
		for i := range cs.Items {
			c := &cs.Items[i]
			patch := client.MergeFrom(c.DeepCopy())
			c.Finalizers = nil
			if err := cl.Patch(ctx, c, patch); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("release canary %s/%s: %w", c.Namespace, c.Name, err)
			}
		}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if err := cl.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", Namespace, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := cl.Get(ctx, client.ObjectKey{Name: Namespace}, ns)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s still terminating after 2m", Namespace)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// The demo app: a Deployment, the user's IngressRoute, and the Canary that
// splits it in place, judged by Traefik's own metrics.
const manifests = `apiVersion: v1
kind: Namespace
metadata: {name: playground}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: podinfo, namespace: playground}
spec:
  replicas: 2
  selector: {matchLabels: {app: podinfo}}
  template:
    metadata: {labels: {app: podinfo}}
    spec:
      containers:
      - name: podinfo
        image: ghcr.io/stefanprodan/podinfo:6.7.0
        env: [{name: VERSION, value: "6.7.0"}, {name: ERROR_RATE, value: "0"}]
        ports: [{name: http, containerPort: 9898}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: podinfo, namespace: playground}
spec:
  entryPoints: [web]
  routes:
  - match: Host(` + "`podinfo.localhost`" + `)
    kind: Rule
    services: [{name: podinfo, port: 9898}]
---
apiVersion: sluice.dev/v1alpha1
kind: Canary
metadata: {name: podinfo, namespace: playground}
spec:
  targetRef: {name: podinfo}
  service: {port: 9898}
  router:
    traefik: {ingressRoute: {name: podinfo}}
  analysis:
    interval: 5s
    threshold: 2
    metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}}
`

func (o Options) scenario() string {
	if o.Scenario == "" {
		return ScenarioCanary
	}
	return o.Scenario
}

func (o Options) goodStory() string {
	if o.scenario() == ScenarioBlueGreen {
		return "a good version is previewed, switched to at once, kept through the scale-down delay and promoted"
	}
	return "a good version walks its steps and is promoted"
}

func (o Options) badStory() string {
	if o.scenario() == ScenarioBlueGreen {
		return "a bad version (30% of its answers are 500s): after the switch the analysis catches it and switches back to the old version, still running"
	}
	return "a bad version (30% of its answers are 500s): the analysis catches it and rolls it back"
}

func install(ctx context.Context, cl client.Client, manifests string) error {
	for _, doc := range strings.Split(manifests, "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			return fmt.Errorf("demo manifest: %w", err)
		}
		if err := cl.Create(ctx, u); err != nil {
			return fmt.Errorf("create %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// setVersion makes the app's pods answer as version, with errRate 500s.
func setVersion(ctx context.Context, cl client.Client, version string, errRate float64) error {
	var d appsv1.Deployment
	if err := cl.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: App}, &d); err != nil {
		return err
	}
	patch := client.MergeFrom(d.DeepCopy())
	c := &d.Spec.Template.Spec.Containers[0]
	c.Image = "ghcr.io/stefanprodan/podinfo:" + version
	c.Env = []corev1.EnvVar{{Name: dataplane.EnvVersion, Value: version}, {Name: dataplane.EnvErrorRate, Value: fmt.Sprint(errRate)}}
	if err := cl.Patch(ctx, &d, patch); err != nil {
		return fmt.Errorf("set version %s on deployment %s/%s: %w", version, Namespace, App, err)
	}
	return nil
}
