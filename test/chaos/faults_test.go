package chaos

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// The kinds of fault a round draws from.
const (
	faultControllerKill = "controller-kill"   // the only replica, SIGKILL, restarted after a delay
	faultLeaderKill     = "leader-kill"       // two replicas: the leader, SIGKILL, restarted as a standby
	faultAPIServer      = "apiserver-restart" // SIGKILL of kube-apiserver; the supervisor restarts it
	faultConflicts      = "route-conflicts"   // a second writer updating the routes' metadata for a while
	faultMetricsDown    = "metrics-down"      // the metric provider (Prometheus) stopped, started again after a while
	faultWebhooks       = "webhooks-failing"  // the webhook receiver answers 503, or hangs past the timeout, for a while
	faultUnready        = "canary-unready"    // the good releases' canary pods turn not-Ready for a while

	// A round's first entry says how many replicas it runs.
	modeOne = "one replica"
	modeTwo = "two replicas"
)

// faultWindow is when in a round faults happen: within the releases' own
// time (under 15 s undisturbed).
const faultWindow = 12 * time.Second

type fault struct {
	kind string
	// at is the time from the round's start; delay the restart's delay or
	// how long the fault lasts.
	at, delay time.Duration
	// mode is how the webhooks fail (hooks5xx or hooksHang).
	mode string
}

func (f fault) String() string {
	if f.kind == modeOne || f.kind == modeTwo {
		return f.kind
	}
	kind := f.kind
	if f.mode != "" {
		kind += " " + f.mode
	}
	return fmt.Sprintf("%s at %s (%s)", kind, f.at.Round(time.Millisecond), f.delay.Round(time.Millisecond))
}

func describeFaults(fs []fault) string {
	if len(fs) == 0 {
		return "none"
	}
	var s []string
	for _, f := range fs {
		s = append(s, f.String())
	}
	return strings.Join(s, ", ")
}

// planFaults draws a round's faults from the seed and the round alone, in
// the order they happen: one to three of different kinds. A round runs
// one replica or two: two when it kills a leader.
func planFaults(set settings, round int) []fault {
	rnd := rand.New(rand.NewSource(set.seed*7_919 + int64(round)))
	kinds := []string{faultControllerKill, faultConflicts, faultMetricsDown, faultWebhooks, faultUnready}
	if set.apiserver {
		kinds = append(kinds, faultAPIServer)
	}
	n := 1 + rnd.Intn(3)
	pair := rnd.Intn(2) == 0
	rnd.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	var out []fault
	for _, k := range kinds[:n] {
		if k == faultControllerKill && pair {
			k = faultLeaderKill
		}
		f := fault{kind: k, at: time.Duration(rnd.Int63n(int64(faultWindow)))}
		switch k {
		case faultConflicts, faultWebhooks, faultUnready:
			f.delay = 2*time.Second + time.Duration(rnd.Int63n(int64(4*time.Second)))
		case faultMetricsDown:
			f.delay = 2*time.Second + time.Duration(rnd.Int63n(int64(metricsDownMax-2*time.Second)))
		default:
			f.delay = time.Duration(rnd.Int63n(int64(3 * time.Second)))
		}
		if k == faultWebhooks {
			f.mode = hooks5xx
			if rnd.Intn(2) == 0 {
				f.mode = hooksHang
			}
		}
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(a, b fault) int { return cmp.Compare(a.at, b.at) })
	if pair {
		out = append([]fault{{kind: modeTwo}}, out...)
	} else {
		out = append([]fault{{kind: modeOne}}, out...)
	}
	return out
}

// countFaults is how many of fs are of kind.
func countFaults(fs []fault, kind string) int {
	n := 0
	for _, f := range fs {
		if f.kind == kind {
			n++
		}
	}
	return n
}

// metricsDownMax is the longest a metric provider outage lasts.
const metricsDownMax = 5 * time.Second

// rig is what faults act on.
type rig struct {
	cs   *controllers
	w    *watcher
	cl   client.Client
	ns   string
	apps []string
	prov *provider
	rc   *receiver
	// rels are the round's releases.
	rels []release
}

// inject does the fault and returns, for a leader's death, the time from
// the death to the new leader's first write (0 when none was due).
func (f fault) inject(t *testing.T, rg *rig) time.Duration {
	t.Helper()
	cs, w, cl, ns, apps := rg.cs, rg.w, rg.cl, rg.ns, rg.apps
	switch f.kind {
	case modeOne:
		cs.kill("b")
		cs.start("a")
	case modeTwo:
		cs.start("a")
		cs.start("b")
	case faultControllerKill:
		for _, name := range cs.running() {
			cs.kill(name)
		}
		time.Sleep(f.delay)
		cs.start("a")
	case faultLeaderKill:
		cs.start("a")
		cs.start("b")
		var leader string
		testenv.Eventually(t, time.Minute, "a leader", func(context.Context) error {
			if leader = cs.leader(); leader == "" {
				return fmt.Errorf("no replica leads yet")
			}
			return nil
		})
		standby := "a"
		if leader == "a" {
			standby = "b"
		}
		before, _ := metricSum(cs.metricsOf(standby), reconciles)
		died := time.Now()
		cs.kill(leader)
		go func() {
			time.Sleep(f.delay)
			cs.start(leader)
		}()
		// The next decision: the first reconcile a replica finishes after
		// the death (a standby reconciles nothing until it leads). The new
		// leader is the standby or, when it wins the race for the expired
		// lease, the killed replica started again (a new process, counting
		// from 0).
		deadline := died.Add(time.Minute)
		for time.Now().Before(deadline) {
			for _, name := range cs.running() {
				n, err := metricSum(cs.metricsOf(name), reconciles)
				if err == nil && ((name == standby && n > before) || (name == leader && n > 0)) {
					return time.Since(died)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("leader %s killed: no replica made a decision within a minute", leader)
		return 0
	case faultAPIServer:
		pid, err := apiserverPID(cs.kubeconfigHost(t))
		if err != nil {
			t.Fatalf("apiserver-restart: %v", err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("apiserver-restart: kill %d: %v", pid, err)
		}
		// The fault is real only if the supervisor started another.
		testenv.Eventually(t, time.Minute, "a new kube-apiserver", func(context.Context) error {
			next, err := apiserverPID(cs.kubeconfigHost(t))
			if err != nil || next == pid {
				return fmt.Errorf("still none but %d (%v)", pid, err)
			}
			return nil
		})
	case faultConflicts:
		w.storm(func(ctx context.Context) {
			for ctx.Err() == nil {
				for _, app := range apps {
					u := &unstructured.Unstructured{}
					u.SetAPIVersion("traefik.io/v1alpha1")
					u.SetKind("TraefikService")
					if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: app}, u); err != nil {
						continue
					}
					ann := u.GetAnnotations()
					if ann == nil {
						ann = map[string]string{}
					}
					ann["chaos.example.com/touched"] = time.Now().Format(time.RFC3339Nano)
					u.SetAnnotations(ann)
					_ = cl.Update(ctx, u)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}, f.delay)
	case faultMetricsDown:
		rg.prov.stop()
		w.storm(func(ctx context.Context) {
			<-ctx.Done()
			if err := rg.prov.start(); err != nil {
				t.Error(err)
			}
		}, f.delay)
	case faultWebhooks:
		rg.rc.fail(w, f.mode, f.delay)
	case faultUnready:
		var good []string
		for _, rel := range rg.rels {
			if !rel.bad {
				good = append(good, rel.app)
			}
		}
		carrying := w.turnedUnready(good)
		flipped, err := setCanaryReady(cl, ns, good, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("  canary-unready: %d canary pods of %d good releases turned not-Ready, %d of them carrying a share\n", len(flipped), len(good), carrying)
		w.storm(func(ctx context.Context) {
			<-ctx.Done()
			if _, err := setCanaryReady(cl, ns, good, flipped, true); err != nil {
				t.Error(err)
			}
		}, f.delay)
	}
	return 0
}

// setCanaryReady turns the Ready condition of apps' canary pods (those of
// the user's Deployment, not the primary's) to ready: all of them that are
// Ready, when turning them not-Ready (and returns their names), or the
// pods named, when turning them back. A readiness probe failing and
// passing again would do the same on a real node.
func setCanaryReady(cl client.Client, ns string, apps []string, only map[string]bool, ready bool) (map[string]bool, error) {
	done := map[string]bool{}
	flip := func(ctx context.Context) error {
		var pods corev1.PodList
		if err := cl.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if done[p.Name] || !canaryPodOf(p, apps) || (only != nil && !only[p.Name]) || (!ready && !podReady(p)) {
				continue
			}
			status := corev1.ConditionFalse
			if ready {
				status = corev1.ConditionTrue
			}
			for j, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
					p.Status.Conditions[j].Status = status
					p.Status.Conditions[j].LastTransitionTime = metav1.Now()
				}
			}
			for j := range p.Status.ContainerStatuses {
				p.Status.ContainerStatuses[j].Ready = ready
			}
			if err := cl.Status().Update(ctx, p); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("pod %s: %w", p.Name, err)
			}
			done[p.Name] = true
		}
		return nil
	}
	// The apiserver may be restarting: try for a minute.
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := flip(ctx)
		cancel()
		if err == nil {
			return done, nil
		}
		if time.Now().After(deadline) {
			return done, fmt.Errorf("set the canary pods' readiness to %v: %w", ready, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// canaryPodOf says whether p is a pod of one of apps' own Deployments (its
// ReplicaSet is <app>-<hash>, the primary's <app>-primary-<hash>).
func canaryPodOf(p *corev1.Pod, apps []string) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind != "ReplicaSet" {
			continue
		}
		for _, app := range apps {
			if rest, ok := strings.CutPrefix(o.Name, app+"-"); ok && !strings.Contains(rest, "-") {
				return true
			}
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (cs *controllers) metricsOf(name string) string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if p := cs.procs[name]; p != nil {
		return p.metrics
	}
	return ""
}

func (cs *controllers) kubeconfigHost(t *testing.T) string {
	t.Helper()
	return testenv.Get(t).Config.Host
}

// apiserverPID finds the local control plane's kube-apiserver serving host
// (a child of localcluster up, named by its --secure-port).
func apiserverPID(host string) (int, error) {
	u, err := url.Parse(host)
	if err != nil {
		return 0, err
	}
	port := u.Port()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) < 2 || args[1] != "kube-apiserver" {
			continue
		}
		for i, a := range args {
			if a == "--secure-port="+port || (a == "--secure-port" && i+1 < len(args) && args[i+1] == port) {
				var pid int
				_, err := fmt.Sscanf(filepath.Base(d), "%d", &pid)
				return pid, err
			}
		}
	}
	return 0, fmt.Errorf("no kube-apiserver process serves port %s", port)
}

// reconciles is the series of the Canary reconciles a replica finished.
const reconciles = `controller_runtime_reconcile_total{controller="canary"`

// metricSum adds up the samples of the series starting with prefix that
// the controller serving metrics at addr exposes.
func metricSum(addr, prefix string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, prefix) {
			var v float64
			if _, err := fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v); err == nil {
				sum += v
			}
		}
	}
	return sum, sc.Err()
}

// leads says whether the controller serving metrics at addr holds the
// leader lease.
func leads(addr string) bool {
	n, err := metricSum(addr, "leader_election_master_status{")
	return err == nil && n > 0
}
