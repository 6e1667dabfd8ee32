package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// TestTraceStatusWrites releases 100 apps at once (the peer benchmark's
// Canaries, the controller binary with its default flags) on the test
// cluster and prints what the Canaries' status writes change, grouped by
// phase, reason and the fields changed, per release; with the controller's
// own request counters before and after. It shows where a release's
// status writes go (docs/performance.md).
//
//	SLUICE_TRACE=1 go test -count=1 -run TestTraceStatusWrites -v ./test/scale
func TestTraceStatusWrites(t *testing.T) {
	if os.Getenv("SLUICE_TRACE") == "" {
		t.Skip("a trace of status writes: SLUICE_TRACE=1")
	}
	c := testenv.Get(t)
	if err := c.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	instance := fmt.Sprintf("trace-%d", os.Getpid())
	metricsAddr := testenv.FreeAddr(t)
	cmd := peers(instance)["sluice"].start(t, c.Root, c.Kubeconfig)
	for i, a := range cmd.Args {
		if a == "--metrics-bind-address" {
			cmd.Args[i+1] = metricsAddr
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	scrape := func() string {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "sluice_kube_requests_total{") && strings.Contains(l, "sluice.dev") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	ns := c.Namespace(t)
	cl := c.SluiceClient(t)
	wcl, err := client.NewWithWatch(c.Config, client.Options{Scheme: cl.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	n := 100
	for i := 0; i < n; i++ {
		for _, o := range peers(instance)["sluice"].objects(ns, fmt.Sprintf("app-%03d", i)) {
			if err := cl.Create(t.Context(), o); err != nil {
				t.Fatal(err)
			}
		}
	}
	testenv.Eventually(t, 3*time.Minute, "initialized", func(ctx context.Context) error {
		var l v1alpha1.CanaryList
		if err := cl.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, cn := range l.Items {
			if cn.Status.Phase != v1alpha1.PhaseInitialized {
				return fmt.Errorf("%s phase %s", cn.Name, cn.Status.Phase)
			}
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	w, err := wcl.Watch(t.Context(), &v1alpha1.CanaryList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("before:\n" + scrape())
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d appsv1.Deployment
			k := client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("app-%03d", i)}
			if err := cl.Get(t.Context(), k, &d); err != nil {
				t.Error(err)
				return
			}
			patch := client.MergeFrom(d.DeepCopy())
			d.Spec.Template.Spec.Containers[0].Image = "example.com/app:2"
			if err := cl.Patch(t.Context(), &d, patch); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	last := map[string][]byte{}
	sig := map[string]int{}
	done := map[string]bool{}
	writes := 0
	deadline := time.After(4 * time.Minute)
	for len(done) < n {
		select {
		case e := <-w.ResultChan():
			cn := e.Object.(*v1alpha1.Canary)
			b, _ := json.Marshal(cn.Status)
			if prev := last[cn.Name]; prev != nil {
				p, _ := jsonpatch.CreateMergePatch(prev, b)
				var m map[string]any
				_ = json.Unmarshal(p, &m)
				var keys []string
				for k := range m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				sig[string(cn.Status.Phase)+" "+cn.Status.Reason+" "+strings.Join(keys, ",")]++
				writes++
			}
			last[cn.Name] = b
			if cn.Status.Phase == v1alpha1.PhaseSucceeded && cn.Status.StableRevision == cn.Status.CanaryRevision && last[cn.Name] != nil {
				done[cn.Name] = true
			}
		case <-deadline:
			t.Fatal("no end")
		}
	}
	var ks []string
	for k := range sig {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b string) int { return sig[b] - sig[a] })
	for _, k := range ks {
		fmt.Printf("%6.2f %s\n", float64(sig[k])/float64(n), k)
	}
	fmt.Printf("%.2f writes per release\n", float64(writes)/float64(n))
	time.Sleep(2 * time.Second)
	fmt.Println("after:\n" + scrape())
}
