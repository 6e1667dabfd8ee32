// Package scale is the scale benchmark (`make bench-scale`): one real
// controller process on the local control plane, N Canaries with their
// Deployments, and what they cost. It is not part of `make test`; it runs
// only when SLUICE_BENCH is set.
package scale

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

const perNamespace = 100

// sizes reads SLUICE_BENCH_SIZES ("100,1000"), the Canary counts to measure
// at, cumulatively.
func sizes(t *testing.T) []int {
	raw := os.Getenv("SLUICE_BENCH_SIZES")
	if raw == "" {
		raw = "100,1000"
	}
	var out []int
	for _, f := range strings.Split(raw, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("SLUICE_BENCH_SIZES %q: %v", raw, err)
		}
		out = append(out, n)
	}
	return out
}

func idleWindow() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SLUICE_BENCH_IDLE")); err == nil && d > 0 {
		return d
	}
	return 60 * time.Second
}

// controllerProc is bin/sluice running as its own process.
type controllerProc struct {
	cmd     *exec.Cmd
	metrics string
}

// sample is the controller's cost at one moment.
type sample struct {
	rss, heap float64 // bytes
	requests  float64 // rest_client_requests_total, all
	cpu       float64 // process_cpu_seconds_total
}

func (p *controllerProc) sample(t *testing.T) sample {
	t.Helper()
	var s sample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			s.rss = kb * 1024
		}
	}
	resp, err := http.Get(p.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[strings.LastIndexByte(rest, ' ')+1:]), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			s.heap = v
		case "rest_client_requests_total":
			s.requests += v
		case "process_cpu_seconds_total":
			s.cpu = v
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return s
}

func startController(t *testing.T, c *testenv.Cluster, instance string) *controllerProc {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("build controller: %v\n%s", err, out)
	}
	addr := "127.0.0.1:18095"
	cmd := exec.Command(bin, "--kubeconfig", c.Kubeconfig, "--instance-id", instance,
		"--metrics-bind-address", addr, "--health-probe-bind-address", "0")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &controllerProc{cmd: cmd, metrics: "http://" + addr + "/metrics"}
	testenv.Eventually(t, 30*time.Second, "controller metrics", func(context.Context) error {
		resp, err := http.Get(p.metrics)
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	})
	return p
}

func objects(ns, name, instance string) (*appsv1.Deployment, *v1alpha1.Canary) {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/" + name + ":1"}}},
			},
		},
	}
	c := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"sluice.dev/instance": instance}},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: name},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			Router:    v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{ParentRefs: []gwv1.ParentReference{{Name: "public"}}}},
			Strategy:  v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetWeight: ptr.To(int32(20))}}},
		},
	}
	return d, c
}

// TestScale creates Canaries up to each size, waits until all are
// Initialized, and prints what the controller costs.
func TestScale(t *testing.T) {
	if os.Getenv("SLUICE_BENCH") == "" {
		t.Skip("the scale benchmark runs with `make bench-scale` (SLUICE_BENCH=1)")
	}
	c := testenv.Get(t)
	if err := c.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	cfg := *c.Config
	cfg.QPS, cfg.Burst = 500, 1000
	cl, err := client.New(&cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	instance := fmt.Sprintf("bench-%d", os.Getpid())
	p := startController(t, c, instance)
	base := p.sample(t)
	var namespaces []string
	// Runs after the namespaces' deletion was asked for and before the
	// controller stops: nothing is left waiting on its finalizer.
	t.Cleanup(func() {
		for _, ns := range namespaces {
			var list v1alpha1.CanaryList
			if err := cl.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
				continue
			}
			for i := range list.Items {
				it := &list.Items[i]
				patch := client.MergeFrom(it.DeepCopy())
				it.Finalizers = nil
				_ = cl.Patch(context.Background(), it, patch)
			}
		}
	})

	type row struct {
		n         int
		init      time.Duration
		rss, heap float64
		idleRPS   float64
		// initCPU is the controller's CPU seconds to initialize the
		// Canaries added for this row.
		initCPU float64
		added   int
	}
	var rows []row
	created := 0
	for _, n := range sizes(t) {
		start := time.Now()
		before := p.sample(t)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		sem := make(chan struct{}, 32)
		for ; created < n; created++ {
			if created%perNamespace == 0 {
				ns := c.Namespace(t)
				namespaces = append(namespaces, ns)
			}
			ns := namespaces[len(namespaces)-1]
			d, cn := objects(ns, fmt.Sprintf("app-%05d", created), instance)
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := cl.Create(ctx, d); err != nil {
					errs <- err
					return
				}
				if err := cl.Create(ctx, cn); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("create: %v", err)
		}
		testenv.Eventually(t, 30*time.Minute, fmt.Sprintf("%d canaries Initialized", n), func(ctx context.Context) error {
			done := 0
			for _, ns := range namespaces {
				var list v1alpha1.CanaryList
				if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
					return err
				}
				for _, it := range list.Items {
					if it.Status.Phase == v1alpha1.PhaseInitialized {
						done++
					}
				}
			}
			if done < n {
				return fmt.Errorf("%d/%d Initialized", done, n)
			}
			return nil
		})
		initTook := time.Since(start)
		settled := p.sample(t)
		// Idle: nothing changes; whatever the controller asks the
		// apiserver now, it asks for nothing.
		time.Sleep(idleWindow())
		idle := p.sample(t)
		added := n
		if len(rows) > 0 {
			added = n - rows[len(rows)-1].n
		}
		rows = append(rows, row{n: n, init: initTook, rss: idle.rss, heap: idle.heap,
			idleRPS: (idle.requests - settled.requests) / idleWindow().Seconds(),
			initCPU: settled.cpu - before.cpu, added: added})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nscale benchmark: %s idle window; controller RSS before any Canary %.1f MiB, heap %.1f MiB\n",
		idleWindow(), base.rss/(1<<20), base.heap/(1<<20))
	fmt.Fprintf(&b, "| canaries | added, all Initialized after | controller CPU to initialize them | RSS MiB | RSS KiB/canary | heap in use MiB | heap KiB/canary | API requests/s idle |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %d in %s | %.1f s (%.1f ms each) | %.1f | %.1f | %.1f | %.1f | %.3f |\n", r.n, r.added, r.init.Round(time.Second),
			r.initCPU, r.initCPU*1000/float64(r.added), r.rss/(1<<20), (r.rss-base.rss)/1024/float64(r.n), r.heap/(1<<20), (r.heap-base.heap)/1024/float64(r.n), r.idleRPS)
	}
	fmt.Fprintf(&b, "targets: <= 50 KiB RSS per canary, 0 requests/s idle\n")
	t.Log(b.String())
	fmt.Print(b.String())
}
