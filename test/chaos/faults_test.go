package chaos

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	// the storm's length.
	at, delay time.Duration
}

func (f fault) String() string {
	if f.kind == modeOne || f.kind == modeTwo {
		return f.kind
	}
	return fmt.Sprintf("%s at %s (%s)", f.kind, f.at.Round(time.Millisecond), f.delay.Round(time.Millisecond))
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
// the order they happen. A round runs one replica or two: two when it
// kills a leader.
func planFaults(set settings, round int) []fault {
	rnd := rand.New(rand.NewSource(set.seed*7_919 + int64(round)))
	kinds := []string{faultControllerKill, faultLeaderKill, faultConflicts}
	if set.apiserver {
		kinds = append(kinds, faultAPIServer)
	}
	n := 1 + rnd.Intn(3)
	pair := rnd.Intn(2) == 0
	var out []fault
	for i := 0; i < n; i++ {
		k := kinds[rnd.Intn(len(kinds))]
		switch {
		case k == faultControllerKill && pair:
			k = faultLeaderKill
		case k == faultLeaderKill && !pair:
			k = faultControllerKill
		}
		f := fault{kind: k, at: time.Duration(rnd.Int63n(int64(faultWindow)))}
		switch k {
		case faultConflicts:
			f.delay = 2*time.Second + time.Duration(rnd.Int63n(int64(4*time.Second)))
		default:
			f.delay = time.Duration(rnd.Int63n(int64(3 * time.Second)))
		}
		out = append(out, f)
	}
	for i := 1; i < len(out); i++ { // in time order
		for j := i; j > 0 && out[j].at < out[j-1].at; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if pair {
		out = append([]fault{{kind: modeTwo}}, out...)
	} else {
		out = append([]fault{{kind: modeOne}}, out...)
	}
	return out
}

// inject does the fault and returns, for a leader's death, the time from
// the death to the new leader's first write (0 when none was due).
func (f fault) inject(t *testing.T, cs *controllers, w *watcher, cl client.Client, ns string, apps []string) time.Duration {
	t.Helper()
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
	}
	return 0
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
