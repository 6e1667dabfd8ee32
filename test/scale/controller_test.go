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
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/sluice-dev/sluice/internal/kubeapi"
	"github.com/sluice-dev/sluice/internal/testenv"
)

const (
	metricsAddr = "127.0.0.1:18095"
	pprofAddr   = "127.0.0.1:18096"
)

// controllerProc is bin/sluice running as its own process, with its
// metrics and pprof endpoints on loopback.
type controllerProc struct {
	cmd   *exec.Cmd
	flags []string
}

// sample is the controller's cost at one moment.
type sample struct {
	at        time.Time
	rss, heap float64 // bytes
	cpu       float64 // process_cpu_seconds_total
	// requests counts sluice_kube_requests_total by "verb resource
	// subresource".
	requests map[string]float64
	// timers are histograms' sums and counts: where a step's time goes.
	timers map[timer]sumCount
}

// timer is one of the controller's histograms the bench reads.
type timer string

const (
	queueWait timer = "queue wait"      // workqueue_queue_duration_seconds: enqueued until a worker takes it
	reconcile timer = "reconcile"       // controller_runtime_reconcile_time_seconds
	writeTime timer = "apiserver write" // sluice_kube_request_duration_seconds, create and patch
)

type sumCount struct{ sum, count float64 }

// mean is the mean of the observations between two samples.
func (s sample) mean(before sample, t timer) time.Duration {
	a, b := s.timers[t], before.timers[t]
	if a.count <= b.count {
		return 0
	}
	return time.Duration((a.sum - b.sum) / (a.count - b.count) * float64(time.Second))
}

// requestCounts sums requests by category between two samples.
type requestCounts struct {
	all, reads, watches, routeWrites, statusWrites, eventWrites, otherWrites float64
	// byKey is every count, by "verb resource subresource".
	byKey map[string]float64
}

func (s sample) since(before sample) requestCounts {
	c := requestCounts{byKey: map[string]float64{}}
	for key, v := range s.requests {
		d := v - before.requests[key]
		if d == 0 {
			continue
		}
		c.byKey[key] = d
		f := strings.SplitN(key, " ", 3)
		if len(f) != 3 {
			continue
		}
		verb, resource, sub := f[0], f[1], f[2]
		c.all += d
		switch {
		case verb == "watch":
			c.watches += d
		case !kubeapi.IsWrite(verb):
			c.reads += d
		case isRouteResource(resource):
			c.routeWrites += d
		case strings.HasPrefix(resource, "canaries.") && sub == "status":
			c.statusWrites += d
		case resource == "events" || resource == "events.events.k8s.io":
			c.eventWrites += d
		default:
			c.otherWrites += d
		}
	}
	return c
}

// startController builds and starts bin/sluice; memLimit, when set, is
// its GOMEMLIMIT (the bench itself runs without one).
func startController(t *testing.T, c *testenv.Cluster, instance, memLimit string, extra []string) *controllerProc {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("build controller: %v\n%s", err, out)
	}
	flags := append([]string{"--kubeconfig", c.Kubeconfig, "--instance-id", instance,
		"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", "0",
		"--pprof-bind-address", pprofAddr}, extra...)
	cmd := exec.Command(bin, flags...)
	if memLimit != "" {
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+memLimit)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &controllerProc{cmd: cmd, flags: flags[2:]}
	testenv.Eventually(t, 30*time.Second, "controller metrics", func(ctx context.Context) error {
		_, err := p.scrape(ctx)
		return err
	})
	return p
}

func (p *controllerProc) sample(t *testing.T) sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := p.scrape(ctx)
	if err != nil {
		t.Fatalf("read the controller's metrics: %v", err)
	}
	return s
}

func (p *controllerProc) scrape(ctx context.Context) (sample, error) {
	s := sample{at: time.Now(), requests: map[string]float64{}, timers: map[timer]sumCount{}}
	var err error
	if _, s.rss, err = proc(p.cmd.Process.Pid); err != nil {
		return s, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return s, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := cutLast(line)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		name, labels, _ := strings.Cut(series, "{")
		l := parseLabels(strings.TrimSuffix(labels, "}"))
		if base, sum, ok := histogramPart(name); ok {
			var t timer
			switch {
			case base == "workqueue_queue_duration_seconds" && l["controller"] == "canary":
				t = queueWait
			case base == "controller_runtime_reconcile_time_seconds" && l["controller"] == "canary":
				t = reconcile
			case base == "sluice_kube_request_duration_seconds" && (l["verb"] == "patch" || l["verb"] == "create"):
				t = writeTime
			}
			if t != "" {
				sc := s.timers[t]
				if sum {
					sc.sum += v
				} else {
					sc.count += v
				}
				s.timers[t] = sc
			}
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			s.heap = v
		case "process_cpu_seconds_total":
			s.cpu = v
		case "sluice_kube_requests_total":
			s.requests[l["verb"]+" "+l["resource"]+" "+l["subresource"]] += v
		}
	}
	return s, sc.Err()
}

// histogramPart reads a histogram's _sum or _count series name: the
// histogram's name and whether it is the sum.
func histogramPart(name string) (base string, sum, ok bool) {
	if base, ok := strings.CutSuffix(name, "_sum"); ok {
		return base, true, true
	}
	base, ok = strings.CutSuffix(name, "_count")
	return base, false, ok
}

// cutLast splits a sample line into its series and its value.
func cutLast(line string) (series, value string, ok bool) {
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return "", "", false
	}
	return strings.TrimSpace(line[:i]), line[i+1:], true
}

// parseLabels reads `a="x",b="y"` (label values here never hold quotes
// or commas).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// profile saves a pprof profile of the controller (path under
// /debug/pprof/) to file.
func (p *controllerProc) profile(ctx context.Context, path, file string) error {
	return saveProfile(ctx, http.DefaultClient, "http://"+pprofAddr, path, file)
}

// saveProfile saves the pprof profile at base/debug/pprof/path to file.
func saveProfile(ctx context.Context, hc *http.Client, base, path, file string) error {
	resp, err := get(ctx, hc, base+"/debug/pprof/"+path)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("pprof %s to %s: %w", path, file, err)
	}
	return f.Close()
}

// get is a GET that must answer 200.
func get(ctx context.Context, hc *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("get %s: %s", url, resp.Status)
	}
	return resp, nil
}

// apiserver is the benchmark control plane's kube-apiserver, read with
// the bench's own credentials: its CPU and resident memory from its own
// /metrics, its CPU profile from /debug/pprof (served because the bench's
// cluster runs with localcluster --apiserver-profiling).
type apiserver struct {
	hc   *http.Client
	host string
}

func newAPIServer(cfg *rest.Config) (apiserver, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return apiserver{}, fmt.Errorf("apiserver client: %w", err)
	}
	return apiserver{hc: hc, host: strings.TrimSuffix(cfg.Host, "/")}, nil
}

// usage reads process_cpu_seconds_total and process_resident_memory_bytes;
// zeros (and the error) when the apiserver does not answer in time.
func (a apiserver) usage(ctx context.Context) (cpu, rss float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := get(ctx, a.hc, a.host+"/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		series, value, ok := cutLast(sc.Text())
		if !ok {
			continue
		}
		switch series {
		case "process_cpu_seconds_total":
			cpu, _ = strconv.ParseFloat(value, 64)
		case "process_resident_memory_bytes":
			rss, _ = strconv.ParseFloat(value, 64)
		}
	}
	return cpu, rss, sc.Err()
}

func (a apiserver) profile(ctx context.Context, path, file string) error {
	return saveProfile(ctx, a.hc, a.host, path, file)
}
