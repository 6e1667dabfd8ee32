package e2e_test

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/dataplane"
)

// stickyAnswer is one request of the sticky scenario's clients.
type stickyAnswer struct {
	client  int // -1: a new client (no cookie jar)
	at      time.Time
	code    int
	version string
}

// stickyClients sends, until stop, requests from new clients (each without
// cookies) and from returning clients (each with its own cookie jar, so
// it sends back what Traefik set), alternately, every interval.
func stickyClients(ctx context.Context, url, host string, returning int, interval time.Duration) func() []stickyAnswer {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var out []stickyAnswer
	clients := make([]*http.Client, returning)
	for i := range clients {
		jar, _ := cookiejar.New(nil)
		clients[i] = &http.Client{Jar: jar, Timeout: 10 * time.Second}
	}
	fresh := &http.Client{Timeout: 10 * time.Second}
	ask := func(cl *http.Client, id int) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/sticky", nil)
		req.Host = host
		a := stickyAnswer{client: id, at: time.Now()}
		resp, err := cl.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			a.code, a.version = resp.StatusCode, resp.Header.Get(dataplane.HeaderVersion)
		}
		mu.Lock()
		out = append(out, a)
		mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if n%2 == 0 {
				go ask(fresh, -1)
			} else {
				i := (n / 2) % returning
				go ask(clients[i], i)
			}
		}
	}()
	return func() []stickyAnswer {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return append([]stickyAnswer(nil), out...)
	}
}

// (f) A sticky canary in TraefikService mode: while the canary holds 20%,
// new clients are split by the weight, and a returning client stays with
// the copy that first answered it — every answer to a client the canary
// answered comes from the canary. Cookie jars are real (net/http's), the
// cookie is Traefik's own.
func (w *world) stickyRelease(t *testing.T) {
	ns, _ := w.namespace(t)
	w.create(t, w.traefikServiceRoute(t, ns, "shop"))
	steps := []v1alpha1.Step{setWeight(20), pause(30 * time.Second)}
	c := canary(ns, "shop", nil, steps...)
	// This harness's Traefik sends to ClusterIPs (nativeLBByDefault), which
	// Traefik does not apply to TraefikServices: nativeLB says it there.
	native := true
	c.Spec.Router = v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{NativeLB: &native}}
	c.Spec.Strategy.SessionAffinity = &v1alpha1.SessionAffinity{MaxAge: &metav1.Duration{Duration: time.Hour}}
	w.deploy(t, ns, app(ns, "shop", "v1", 0), c)

	tl := w.watch(t, ns, "shop", traefikServiceShare)
	stop := stickyClients(t.Context(), w.traefik.WebURL, host(ns), 60, 10*time.Millisecond)
	w.release(t, ns, "shop", "v2", 0)
	w.waitFor(t, ns, "shop", v1alpha1.PhaseSucceeded, 3*time.Minute)
	answers := stop()
	tl.end()

	from, to := tl.pause(1, steps[1])
	if from.IsZero() || to.IsZero() {
		t.Fatal("the pause after setWeight 20 not seen in the status timeline")
	}
	var newN, newCanary, fails int
	first := map[int]string{} // each returning client's first answer in the window
	kept := map[string][2]int{}
	for _, a := range answers {
		if a.at.Before(from) || !a.at.Before(to) {
			continue
		}
		if a.code != 200 {
			fails++
			continue
		}
		if a.client < 0 {
			newN++
			if a.version == "v2" {
				newCanary++
			}
			continue
		}
		f, seen := first[a.client]
		if !seen {
			first[a.client] = a.version
			continue
		}
		k := kept[f]
		k[0]++
		if a.version == "v2" {
			k[1]++
		}
		kept[f] = k
	}
	pct := func(n, of int) float64 {
		if of == 0 {
			return math.NaN()
		}
		return 100 * float64(n) / float64(of)
	}
	tb := &table{title: "(f) sticky canary (TraefikService mode, Traefik's cookie), while the canary holds 20%"}
	tb.add("new clients", "20", pct(newCanary, newN), newN, 0)
	tb.add("kept by the canary", "100", pct(kept["v2"][1], kept["v2"][0]), kept["v2"][0], 0)
	tb.add("kept by the primary", "0", pct(kept["v1"][1], kept["v1"][0]), kept["v1"][0], 0)
	tb.add("failed, in all", "", math.NaN(), len(answers), fails)
	tb.print(t)
	if p := pct(newCanary, newN); newN < 500 || math.Abs(p-20) > 5 {
		t.Errorf("new clients: %.2f%% of %d answered by the canary, want 20 ± 5", p, newN)
	}
	if k := kept["v2"]; k[0] < 50 || k[1] != k[0] {
		t.Errorf("clients the canary answered: %d of %d later answers from the canary, want all (and at least 50)", k[1], k[0])
	}
	if k := kept["v1"]; k[0] < 100 || k[1] != 0 {
		t.Errorf("clients the primary answered: %d of %d later answers from the canary, want none (and at least 100)", k[1], k[0])
	}
	if fails != 0 {
		t.Errorf("%d requests failed while the canary held 20%%", fails)
	}
}

// traefikServiceShare reads the canary's share from Sluice's TraefikService.
func traefikServiceShare(ctx context.Context, cl client.Client, ns, name string) (float64, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "TraefikService"})
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return 0, err
	}
	services, _, _ := unstructured.NestedSlice(u.Object, "spec", "weighted", "services")
	var total, canary float64
	for _, s := range services {
		e, _ := s.(map[string]any)
		wt, _ := e["weight"].(int64)
		total += float64(wt)
		if e["name"] == name+"-canary" {
			canary += float64(wt)
		}
	}
	if total == 0 {
		return 0, nil
	}
	return 100 * canary / total, nil
}
