package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
	"github.com/sluice-dev/sluice/internal/webhook"
)

// receiver is a webhook endpoint the test controls: each path answers the
// status the test sets (200 by default), or one decided from the payload,
// or hangs until the test ends, and every request's signature is checked
// against key.
type receiver struct {
	url string
	key []byte

	mu       sync.Mutex
	codes    map[string]int
	decide   map[string]func(webhook.Payload) int
	hang     map[string]bool
	inflight map[string]int
	calls    map[string][]webhook.Payload
	unsigned int
}

func startReceiver(t *testing.T, key []byte) *receiver {
	rc := &receiver{key: key, codes: map[string]int{}, decide: map[string]func(webhook.Payload) int{}, hang: map[string]bool{},
		inflight: map[string]int{}, calls: map[string][]webhook.Payload{}}
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		_ = json.Unmarshal(body, &p)
		rc.mu.Lock()
		if !webhook.Verify(rc.key, body, r.Header.Get(webhook.SignatureHeader)) {
			rc.unsigned++
			rc.mu.Unlock()
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		rc.calls[r.URL.Path] = append(rc.calls[r.URL.Path], p)
		code, hang := rc.codes[r.URL.Path], rc.hang[r.URL.Path]
		if f := rc.decide[r.URL.Path]; f != nil {
			code = f(p)
		}
		if hang {
			rc.inflight[r.URL.Path]++
		}
		rc.mu.Unlock()
		if hang {
			select {
			case <-done:
			case <-r.Context().Done():
			}
			rc.mu.Lock()
			rc.inflight[r.URL.Path]--
			rc.mu.Unlock()
			return
		}
		if code == 0 {
			code = http.StatusOK
		}
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, "%s says %d\n", r.URL.Path, code)
	}))
	rc.url = srv.URL
	t.Cleanup(func() { close(done); srv.Close() })
	return rc
}

func (rc *receiver) set(path string, code int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.codes[path] = code
}

// answer makes path answer what f decides from each request's payload.
func (rc *receiver) answer(path string, f func(webhook.Payload) int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.decide[path] = f
}

func (rc *receiver) hangOn(path string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.hang[path] = true
}

func (rc *receiver) got(path string) []webhook.Payload {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.Payload(nil), rc.calls[path]...)
}

func (rc *receiver) hanging(path string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.inflight[path]
}

func (rc *receiver) badSignatures() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.unsigned
}

// hooked adds webhooks (type -> path on rc) signed with the Secret "hmac",
// asked every second.
func hooked(c *v1alpha1.Canary, rc *receiver, hooks map[v1alpha1.WebhookType]string) *v1alpha1.Canary {
	if c.Spec.Analysis == nil {
		c.Spec.Analysis = &v1alpha1.Analysis{}
	}
	c.Spec.Analysis.Interval = &metav1.Duration{Duration: time.Second}
	c.Spec.Analysis.Threshold = ptr.To(int32(2))
	for typ, path := range hooks {
		c.Spec.Analysis.Webhooks = append(c.Spec.Analysis.Webhooks, v1alpha1.Webhook{
			Name: string(typ), Type: typ, URL: rc.url + path, Retries: ptr.To(int32(0)),
			Timeout:   &metav1.Duration{Duration: 2 * time.Second},
			SecretRef: &v1alpha1.SecretKeyRef{Name: "hmac"},
			Metadata:  map[string]string{"team": "payments"},
		})
	}
	return c
}

func hmacSecret(ns string, key []byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hmac", Namespace: ns}, Data: map[string][]byte{"key": key}}
}

// waitCalls waits until path has been called at least n times.
func waitCalls(t *testing.T, rc *receiver, path string, n int) []webhook.Payload {
	t.Helper()
	var got []webhook.Payload
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d calls of %s", n, path), func(context.Context) error {
		if got = rc.got(path); len(got) < n {
			return fmt.Errorf("%d calls", len(got))
		}
		return nil
	})
	return got
}

// Closed gates hold the release where it is; opening them lets it go on.
// Every request is signed and the receiver verifies it; the payload names
// the release; event and post-rollout hooks hear about the outcome.
func TestWebhookGatesHoldUntilOpened(t *testing.T) {
	_, ns, cl := setup(t)
	key := []byte("gate-key-" + ns)
	rc := startReceiver(t, key)
	rc.set("/rollout", http.StatusForbidden)
	rc.set("/promotion", http.StatusForbidden)
	c := hooked(canary(ns, "gated", weightStep(30)), rc, map[v1alpha1.WebhookType]string{
		v1alpha1.WebhookConfirmRollout:   "/rollout",
		v1alpha1.WebhookPreRollout:       "/pre",
		v1alpha1.WebhookConfirmPromotion: "/promotion",
		v1alpha1.WebhookPostRollout:      "/post",
		v1alpha1.WebhookEvent:            "/events",
	})
	create(t, cl, hmacSecret(ns, key), app(ns, "gated", "example.com/gated:1", 1), c)
	waitPhase(t, cl, ns, "gated", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "gated", "example.com/gated:2")

	// confirm-rollout closed: Waiting, asked again each interval, the
	// canary not scaled up and given no traffic.
	waitPhase(t, cl, ns, "gated", v1alpha1.PhaseWaiting, 30*time.Second)
	asked := waitCalls(t, rc, "/rollout", 3)
	got := waitPhase(t, cl, ns, "gated", v1alpha1.PhaseWaiting, time.Second)
	if !strings.Contains(got.Status.Message, "/rollout says 403") {
		t.Errorf("Waiting message does not carry the gate's answer: %s", got.Status.Message)
	}
	p := asked[0]
	if p.Type != "confirm-rollout" || p.Name != "gated" || p.Namespace != ns || p.Revision != got.Status.CanaryRevision ||
		p.Phase != "Waiting" || p.Metadata["team"] != "payments" || p.Timestamp.IsZero() {
		t.Errorf("payload %+v does not describe the waiting release %s", p, got.Status.CanaryRevision)
	}
	expectTargetReplicas(t, cl, ns, "gated", 0)
	expectShare(t, cl, ns, "gated", 0)
	if n := len(rc.got("/pre")); n != 0 {
		t.Errorf("pre-rollout called %d times before the rollout was confirmed", n)
	}

	// Open it: pre-rollout runs, the step applies, then the
	// confirm-promotion gate holds at 30%.
	rc.set("/rollout", http.StatusOK)
	got = waitPhase(t, cl, ns, "gated", v1alpha1.PhaseWaitingPromotion, 60*time.Second)
	if got.Status.Gate == nil || got.Status.Gate.Type != v1alpha1.WebhookConfirmPromotion || got.Status.Gate.Open {
		t.Errorf("gate = %+v, want confirm-promotion closed", got.Status.Gate)
	}
	pre := rc.got("/pre")
	if len(pre) != 1 || pre[0].Weight != 0 {
		t.Errorf("pre-rollout calls %+v: want exactly one, before any canary traffic", pre)
	}
	waitCalls(t, rc, "/promotion", len(rc.got("/promotion"))+2)
	expectShare(t, cl, ns, "gated", 30)
	if c, _ := getCanary(t.Context(), cl, ns, "gated"); c.Status.Phase != v1alpha1.PhaseWaitingPromotion {
		t.Errorf("promoted through a closed gate: %s", c.Status.Phase)
	}

	rc.set("/promotion", http.StatusOK)
	waitPhase(t, cl, ns, "gated", v1alpha1.PhaseSucceeded, 60*time.Second)
	expectShare(t, cl, ns, "gated", 0)
	post := waitCalls(t, rc, "/post", 1)
	if post[0].Phase != "Succeeded" {
		t.Errorf("post-rollout payload phase %s, want Succeeded", post[0].Phase)
	}
	testenv.Eventually(t, 10*time.Second, "event hook heard Promoted", func(context.Context) error {
		for _, e := range rc.got("/events") {
			if e.Event != nil && e.Event.Reason == "Promoted" {
				return nil
			}
		}
		return fmt.Errorf("%d events, none Promoted", len(rc.got("/events")))
	})
	if n := rc.badSignatures(); n != 0 {
		t.Errorf("%d requests failed the receiver's HMAC check", n)
	}
	assertEvents(t, cl, ns, "gated", "GateClosed", "GateOpened", "Promoted")
}

// A rollback hook answering 2xx rolls the release back; its other answers
// do not.
func TestRollbackHookRollsBack(t *testing.T) {
	_, ns, cl := setup(t)
	key := []byte("rb-" + ns)
	rc := startReceiver(t, key)
	rc.set("/rollback", http.StatusServiceUnavailable)
	c := hooked(canary(ns, "rb", weightStep(20), pauseStep(time.Hour)), rc, map[v1alpha1.WebhookType]string{
		v1alpha1.WebhookRollback: "/rollback",
	})
	create(t, cl, hmacSecret(ns, key), app(ns, "rb", "example.com/rb:1", 1), c)
	waitPhase(t, cl, ns, "rb", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "rb", "example.com/rb:2")
	waitCalls(t, rc, "/rollback", 3)
	if c, _ := getCanary(t.Context(), cl, ns, "rb"); c.Status.Phase != v1alpha1.PhaseProgressing || c.Status.FailedChecks != 0 {
		t.Fatalf("a 503 from the rollback hook changed the release: %s, failed %d", c.Status.Phase, c.Status.FailedChecks)
	}
	rc.set("/rollback", http.StatusOK)
	got := waitPhase(t, cl, ns, "rb", v1alpha1.PhaseFailed, 30*time.Second)
	if got.Status.Reason != "RollbackWebhook" || !strings.Contains(got.Status.Message, rc.url+"/rollback") {
		t.Errorf("reason %s: %s; want RollbackWebhook naming the hook", got.Status.Reason, got.Status.Message)
	}
	expectShare(t, cl, ns, "rb", 0)
	expectTargetReplicas(t, cl, ns, "rb", 0)
}

// A hook that never answers holds only its own Canary, until its timeout
// fails the check; another Canary's release goes on meanwhile.
func TestHangingHookTimesOutWithoutBlockingOthers(t *testing.T) {
	_, ns, cl := setup(t)
	key := []byte("hang-" + ns)
	rc := startReceiver(t, key)
	rc.hangOn("/hang")
	slow := hooked(canary(ns, "stuck", weightStep(20), pauseStep(time.Hour)), rc, map[v1alpha1.WebhookType]string{
		v1alpha1.WebhookRollout: "/hang",
	})
	slow.Spec.Analysis.Webhooks[0].Timeout = &metav1.Duration{Duration: 8 * time.Second}
	slow.Spec.Analysis.Threshold = ptr.To(int32(1))
	fast := hooked(canary(ns, "brisk", weightStep(20), pauseStep(time.Second), weightStep(50)), rc, map[v1alpha1.WebhookType]string{
		v1alpha1.WebhookRollout: "/ok",
	})
	create(t, cl, hmacSecret(ns, key), app(ns, "stuck", "example.com/stuck:1", 1), app(ns, "brisk", "example.com/brisk:1", 1), slow, fast)
	waitPhase(t, cl, ns, "stuck", v1alpha1.PhaseInitialized, 60*time.Second)
	waitPhase(t, cl, ns, "brisk", v1alpha1.PhaseInitialized, 60*time.Second)

	setImage(t, cl, ns, "stuck", "example.com/stuck:2")
	testenv.Eventually(t, 30*time.Second, "the hanging hook is being called", func(context.Context) error {
		if rc.hanging("/hang") == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	setImage(t, cl, ns, "brisk", "example.com/brisk:2")
	waitPhase(t, cl, ns, "brisk", v1alpha1.PhaseSucceeded, 60*time.Second)
	if n := rc.hanging("/hang"); n == 0 {
		t.Fatalf("the hanging call ended before the other release finished; the test proves nothing")
	}
	if c, _ := getCanary(t.Context(), cl, ns, "stuck"); c.Status.Phase != v1alpha1.PhaseProgressing || c.Status.CanaryWeight != 20 {
		t.Errorf("stuck canary moved while its check hung: %s at %d%%", c.Status.Phase, c.Status.CanaryWeight)
	}

	got := waitPhase(t, cl, ns, "stuck", v1alpha1.PhaseFailed, 30*time.Second)
	if got.Status.Reason != "AnalysisFailed" || !strings.Contains(got.Status.Message, "no answer within 8s") {
		t.Errorf("reason %s: %s; want AnalysisFailed with the hook's timeout", got.Status.Reason, got.Status.Message)
	}
	expectShare(t, cl, ns, "stuck", 0)
}

// The confirm-traffic-increase gate holds the weight before each step
// that raises it: the route (the HTTPRoute read from the apiserver every
// 20 ms) never carries more than the steps the receiver has approved, a
// closed gate is asked again every interval while the weight stays, and
// approving a step lets the weight rise to it.
func TestTrafficIncreaseGateHoldsEachIncrease(t *testing.T) {
	_, ns, cl := setup(t)
	key := []byte("increase-" + ns)
	rc := startReceiver(t, key)
	// The receiver approves the increases of steps up to approved.
	var approved atomic.Int32
	approved.Store(-1)
	rc.answer("/increase", func(p webhook.Payload) int {
		if p.Step <= approved.Load() {
			return http.StatusOK
		}
		return http.StatusForbidden
	})
	c := hooked(canary(ns, "inc", weightStep(20), weightStep(50)), rc, map[v1alpha1.WebhookType]string{
		v1alpha1.WebhookConfirmTrafficIncrease: "/increase",
	})
	create(t, cl, hmacSecret(ns, key), app(ns, "inc", "example.com/inc:1", 1), c)
	waitPhase(t, cl, ns, "inc", v1alpha1.PhaseInitialized, 60*time.Second)

	// The most the route may carry once the steps up to a are approved.
	limit := func(a int32) int32 {
		switch {
		case a < 0:
			return 0
		case a == 0:
			return 20
		}
		return 100
	}
	// Every version of the route, for the shares it walked; a sampler
	// for the approvals (a missed sample can only hide an excess, never
	// invent one).
	rec := recordShares(t, &gwv1.HTTPRouteList{}, func() client.Object { return &gwv1.HTTPRoute{} }, ns, "inc", routeShare("inc"))
	var mu sync.Mutex
	var over []string
	sample := func(ctx context.Context) {
		split, err := routeSplit(ctx, cl, ns, "inc")
		if err != nil {
			return
		}
		share := canaryShare(split, "inc")
		// Read after the route: an approval the route reflects was given
		// before the route was read.
		a := approved.Load()
		mu.Lock()
		defer mu.Unlock()
		if share > limit(a) {
			over = append(over, fmt.Sprintf("%d%% with steps up to %d approved", share, a))
		}
	}
	stop := inBackground(t, sample)
	// heldAt waits until the gate of step has been asked three times
	// (closed, it is asked every interval) and checks that the release
	// waits on it with the route at weight.
	heldAt := func(step int32, weight int32) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, fmt.Sprintf("gate of step %d asked 3 times", step), func(context.Context) error {
			n := 0
			for _, p := range rc.got("/increase") {
				if p.Step == step && p.Type == string(v1alpha1.WebhookConfirmTrafficIncrease) {
					n++
				}
			}
			if n < 3 {
				return fmt.Errorf("%d calls", n)
			}
			return nil
		})
		got, err := getCanary(t.Context(), cl, ns, "inc")
		if err != nil {
			t.Fatal(err)
		}
		g := got.Status.Gate
		if g == nil || g.Type != v1alpha1.WebhookConfirmTrafficIncrease || g.Point != fmt.Sprintf("step %d", step) || g.Open ||
			!strings.Contains(g.Message, "/increase says 403") {
			t.Errorf("gate = %+v, want confirm-traffic-increase of step %d closed with the receiver's answer", g, step)
		}
		expectShare(t, cl, ns, "inc", weight)
	}

	setImage(t, cl, ns, "inc", "example.com/inc:2")
	heldAt(0, 0)
	approved.Store(0)
	expectShare(t, cl, ns, "inc", 20)
	heldAt(1, 20)
	approved.Store(1)
	waitPhase(t, cl, ns, "inc", v1alpha1.PhaseSucceeded, 60*time.Second)
	expectShare(t, cl, ns, "inc", 0)
	stop()
	shares := rec.states()

	mu.Lock()
	defer mu.Unlock()
	if want := []int32{0, 20, 50, 100, 0}; !slices.Equal(shares, want) {
		t.Errorf("route canary shares %v, want %v", shares, want)
	}
	if len(over) > 0 {
		t.Errorf("the route carried more than the gate allowed (%d samples), first: %s", len(over), over[0])
	}
	if n := rc.badSignatures(); n != 0 {
		t.Errorf("%d requests failed the receiver's HMAC check", n)
	}
	assertEvents(t, cl, ns, "inc", "GateClosed", "GateOpened")
}
