package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/dashboard"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// chromium is Debian's (make deps installs it), or $CHROME.
func chromium(t *testing.T) string {
	if p := os.Getenv("CHROME"); p != "" {
		return p
	}
	const p = "/usr/bin/chromium"
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run make deps (it installs Debian's chromium), or set CHROME", p)
	}
	return p
}

// browser starts a headless Chromium for the test; tabs are new contexts
// of the one it returns.
func browser(t *testing.T, ctx context.Context) context.Context {
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.WindowSize(1360, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// serve runs a dashboard on a loopback port and returns its URL.
func serve(t *testing.T, ctx context.Context, o dashboard.Options) (*dashboard.Server, string) {
	s, err := dashboard.New(ctx, o)
	if err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, l) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("dashboard stopped: %v", err)
		}
	})
	return s, "http://" + l.Addr().String() + "/"
}

// shot writes a full-page PNG into the test's directory, or into
// $SLUICE_DASHBOARD_SHOTS (the docs' images are made this way).
func shot(t *testing.T, tab context.Context, name string) {
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("SLUICE_DASHBOARD_SHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d KiB)", path, len(png)/1024)
}

// waitJS waits until the expression is truthy in the tab, up to d.
func waitJS(t *testing.T, tab context.Context, d time.Duration, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Poll[any](expr, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		page, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("main").innerText`))
		t.Fatalf("%s: %v\npage:\n%s", what, err, page)
	}
}

func jsString(tab context.Context, expr string) string {
	s, _ := chromedp.Run(tab, chromedp.Evaluate[string](expr))
	return s
}

// metricServer answers the web MetricTemplate: a latency that moves a
// little each request, like a real one.
func metricServer(t *testing.T) string {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"p99": %d}`, 120+n.Add(1)%9*3)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// The dashboard in a real browser, on the local control plane with a real
// controller: the list shows a release in progress, the weight chart gains
// points as steps pass, a change reaches every open tab over one watch per
// kind, an abort from the page rolls the release back, and a user who may
// not patch Canaries sees the apiserver's refusal.
func TestDashboardInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local control plane and Chromium")
	}
	c := testenv.Get(t)
	cl := c.SluiceClient(t)
	ns := c.Namespace(t)
	instance := c.StartInstance(t, "dash")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	started := time.Now()
	mark := func(step string) { t.Logf("%6.1fs  %s", time.Since(started).Seconds(), step) }

	labels := map[string]string{"app": "shop"}
	dep := &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/shop:1"}}}}
	target := deployment(ns, "shop", labels, dep)
	tmpl := &v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "latency", Namespace: ns},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.MetricProvider{Type: "web", Address: metricServer(t), Timeout: &metav1.Duration{Duration: 2 * time.Second},
				Web: &v1alpha1.WebProvider{JSONPath: "{.p99}"}},
			Query: "/latency",
		},
	}
	weight := func(w int32) v1alpha1.Step { return v1alpha1.Step{SetWeight: ptr.To(w)} }
	pause := v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: 2 * time.Second}}}
	can := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Labels: map[string]string{"sluice.dev/instance": instance}},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: "shop"}, Service: v1alpha1.ServiceSpec{Port: 80},
			Router:   gatewayRouter(),
			Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{weight(20), pause, weight(40), pause, weight(60), {Pause: &v1alpha1.PauseStep{}}}},
			Analysis: &v1alpha1.Analysis{
				Interval:  &metav1.Duration{Duration: 2 * time.Second},
				Threshold: ptr.To(int32(3)),
				Metrics: []v1alpha1.MetricCheck{{Name: "p99-latency-ms", TemplateRef: &v1alpha1.TemplateRef{Name: "latency"},
					ThresholdRange: &v1alpha1.ThresholdRange{Max: ptr.To(500.0)}}},
			},
		},
	}
	// A second Canary, idle, so the list has more than one row.
	cartLabels := map[string]string{"app": "cart"}
	cart := deployment(ns, "cart", cartLabels, &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: cartLabels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/cart:7"}}}})
	cartCanary := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: ns, Labels: map[string]string{"sluice.dev/instance": instance}},
		Spec: v1alpha1.CanarySpec{TargetRef: v1alpha1.TargetRef{Name: "cart"}, Service: v1alpha1.ServiceSpec{Port: 80},
			Router: gatewayRouter(), Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{weight(50), {Pause: &v1alpha1.PauseStep{}}}}},
	}
	for _, o := range []client.Object{target, tmpl, can, cart, cartCanary} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { finalize(t, cl, can); finalize(t, cl, cartCanary) })
	waitCanary(t, cl, ns, "shop", "Initialized", func(c *v1alpha1.Canary) bool { return c.Status.Phase == v1alpha1.PhaseInitialized })

	// One dashboard as the admin, counting the watches it opens.
	var watches atomic.Int64
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if r.URL.Query().Get("watch") == "true" {
				watches.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	srv, url := serve(t, ctx, dashboard.Options{Config: cfg, Namespace: ns})
	bctx := browser(t, ctx)
	tab, closeTab := chromedp.NewContext(bctx)
	defer closeTab()
	mark("controller, dashboard and browser up")

	// The list, then a release.
	if err := chromedp.Do(tab, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`tr[data-key="`+ns+`/shop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key="`+ns+`/cart"]`))); err != nil {
		t.Fatalf("list page: %v", err)
	}
	setImage(t, cl, ns, "shop", "example.com/shop:2")
	row := `document.querySelector('tr[data-key="` + ns + `/shop"]')`
	waitJS(t, tab, 60*time.Second, "the list shows the release in progress",
		row+` && `+row+`.innerText.includes("Progressing") && /[1-9]\d*%/.test(`+row+`.querySelector(".weight").innerText)`)
	mark("list shows Progressing with its weight")
	shot(t, tab, "dashboard-list")

	// One Canary: the weight chart gains points as steps pass.
	if err := chromedp.Do(tab, chromedp.Navigate(url+"#/"+ns+"/shop"), chromedp.WaitVisible(chromedp.ID("weight-chart"))); err != nil {
		t.Fatalf("detail page: %v", err)
	}
	points := func() int {
		n, _ := chromedp.Run(tab, chromedp.Evaluate[int](`+(document.querySelector("#weight-chart").dataset.points || 0)`))
		return n
	}
	first := points()
	for _, w := range []string{"40%", "60%"} {
		waitJS(t, tab, 60*time.Second, "the page shows weight "+w, `(document.querySelector("#weight")||{}).innerText?.startsWith("`+w+`")`)
		mark("page shows weight " + w + fmt.Sprintf(", chart has %d points", points()))
	}
	waitJS(t, tab, 60*time.Second, "WaitingPromotion", `document.querySelector("#phase").innerText === "WaitingPromotion"`)
	waitJS(t, tab, 30*time.Second, "a chart of the metric", `document.querySelectorAll('[data-chart="p99-latency-ms"] [data-point]').length >= 3`)
	if last := points(); last <= first+2 {
		t.Errorf("the weight chart had %d points at first and %d at weight 60: it should gain a point per step and round", first, last)
	}
	mark(fmt.Sprintf("WaitingPromotion; weight chart %d → %d points", first, points()))
	shot(t, tab, "dashboard-canary")

	// Update latency: an Event written to the apiserver, until the page
	// shows it (the page notes when its table changed).
	lat := latencies(t, tab, cl, can, 10)
	t.Logf("apiserver → page (Event written → row in the page), %d samples: min %v, median %v, max %v", len(lat), lat[0], lat[len(lat)/2], lat[len(lat)-1])
	if lat[len(lat)-1] > 10*time.Second {
		t.Errorf("a change took %v to reach the page; it should be live", lat[len(lat)-1])
	}

	// More tabs: each holds one stream, the cluster sees no more watches,
	// and every tab gets the change.
	opened := watches.Load()
	var tabs []context.Context
	for i := 0; i < 4; i++ {
		more, closeMore := chromedp.NewContext(bctx)
		defer closeMore()
		if err := chromedp.Do(more, chromedp.Navigate(url+"#/"+ns+"/shop"), chromedp.WaitVisible(chromedp.ID("weight-chart"))); err != nil {
			t.Fatalf("tab %d: %v", i, err)
		}
		tabs = append(tabs, more)
	}
	testenv.Eventually(t, 20*time.Second, "five streams open", func(context.Context) error {
		if n := srv.Streams(); n != 5 {
			return fmt.Errorf("%d streams", n)
		}
		return nil
	})
	emit(t, cl, can, "to-every-tab")
	for i, more := range append(tabs, tab) {
		waitJS(t, more, 10*time.Second, fmt.Sprintf("tab %d shows the Event", i), `document.querySelector("#events").innerText.includes("to-every-tab")`)
	}
	if n := watches.Load() - opened; n != 0 {
		t.Errorf("opening 4 more tabs started %d more watches on the apiserver; the dashboard shares one per kind", n)
	}
	// A hidden tab lets its stream go (and takes a fresh one when shown).
	if _, err := chromedp.Run(tabs[0], chromedp.Evaluate[any](`Object.defineProperty(document, "hidden", {value: true, configurable: true}); document.dispatchEvent(new Event("visibilitychange"))`)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the hidden tab's stream closed", func(context.Context) error {
		if n := srv.Streams(); n != 4 {
			return fmt.Errorf("%d streams", n)
		}
		return nil
	})
	mark(fmt.Sprintf("5 tabs updated from %d watches in all; a hidden tab closed its stream", watches.Load()))
	for _, more := range tabs {
		_ = chromedp.Cancel(more)
	}

	// Abort from the page rolls the release back.
	if err := chromedp.Do(tab,
		chromedp.Click(chromedp.CSS(`button[data-action="abort"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm-yes")),
		chromedp.Click(chromedp.ID("confirm-yes")),
	); err != nil {
		t.Fatalf("abort: %v", err)
	}
	waitJS(t, tab, 20*time.Second, "the abort's answer", `document.querySelector("#action-result").classList.contains("ok")`)
	mark("abort confirmed: " + jsString(tab, `document.querySelector("#action-result").innerText`))
	waitJS(t, tab, 60*time.Second, "Failed in the page", `document.querySelector("#phase").innerText === "Failed" && document.querySelector("#weight").innerText.startsWith("0%")`)
	rolled := waitCanary(t, cl, ns, "shop", "rolled back", func(c *v1alpha1.Canary) bool {
		return c.Status.Phase == v1alpha1.PhaseFailed && c.Status.CanaryWeight == 0
	})
	if rolled.Status.Reason != v1alpha1.ReasonAborted {
		t.Errorf("rolled back with reason %s, want %s", rolled.Status.Reason, v1alpha1.ReasonAborted)
	}
	waitJS(t, tab, 20*time.Second, "the record shows the Failed release", `[...document.querySelectorAll("#records tr")].some(r => r.innerText.includes("Failed") && r.innerText.includes("Aborted"))`)
	mark("page shows Failed at 0% and the record Aborted")
	shot(t, tab, "dashboard-aborted")

	// A user who may read but not patch: the action is refused with the
	// apiserver's own message, and nothing changes.
	viewer := readOnlyUser(t, c, ns)
	_, viewerURL := serve(t, ctx, dashboard.Options{Config: viewer, Namespace: ns})
	vtab, closeV := chromedp.NewContext(bctx)
	defer closeV()
	if err := chromedp.Do(vtab, chromedp.Navigate(viewerURL+"#/"+ns+"/shop"), chromedp.WaitVisible(chromedp.ID("weight-chart"))); err != nil {
		t.Fatalf("viewer's page: %v", err)
	}
	waitJS(t, vtab, 20*time.Second, "retry offered", `!document.querySelector('button[data-action="retry"]').disabled`)
	if err := chromedp.Do(vtab,
		chromedp.Click(chromedp.CSS(`button[data-action="retry"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm-yes")),
		chromedp.Click(chromedp.ID("confirm-yes")),
	); err != nil {
		t.Fatalf("retry: %v", err)
	}
	waitJS(t, vtab, 20*time.Second, "the refusal", `document.querySelector("#action-result").classList.contains("bad")`)
	refusal := jsString(vtab, `document.querySelector("#action-result").innerText`)
	if !strings.Contains(refusal, "403") || !strings.Contains(refusal, `cannot patch resource "canaries"`) {
		t.Errorf("the refusal does not carry the apiserver's message: %q", refusal)
	}
	mark("viewer's retry refused: " + refusal)
	shot(t, vtab, "dashboard-refused")
	var after v1alpha1.Canary
	if err := cl.Get(ctx, client.ObjectKeyFromObject(can), &after); err != nil {
		t.Fatal(err)
	}
	if after.Status.Phase != v1alpha1.PhaseFailed || after.Annotations[v1alpha1.RequestAnnotation] != rolled.Annotations[v1alpha1.RequestAnnotation] {
		t.Errorf("the refused retry changed the Canary: phase %s, request %q", after.Status.Phase, after.Annotations[v1alpha1.RequestAnnotation])
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// latencies writes n Events about the Canary and measures each from just
// before the write to when the page's Events table showed it (the page's
// own clock, through a MutationObserver): sorted.
func latencies(t *testing.T, tab context.Context, cl client.Client, can *v1alpha1.Canary, n int) []time.Duration {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Evaluate[any](`
		window.seen = {};
		new MutationObserver(() => {
			for (const td of document.querySelectorAll("#events td")) {
				if (td.innerText.startsWith("probe-") && !(td.innerText in window.seen)) window.seen[td.innerText] = performance.timeOrigin + performance.now();
			}
		}).observe(document.querySelector("#events tbody"), {childList: true, subtree: true, characterData: true});
		true`)); err != nil {
		t.Fatal(err)
	}
	var out []time.Duration
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("probe-%d", i)
		before := time.Now()
		emit(t, cl, can, msg)
		ms, err := chromedp.Run(tab, chromedp.Poll[float64](`window.seen["`+msg+`"]`, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(20*time.Millisecond)))
		if err != nil {
			t.Fatalf("event %s never reached the page: %v", msg, err)
		}
		seen := time.UnixMicro(int64(ms * 1000))
		out = append(out, seen.Sub(before))
	}
	slices.Sort(out)
	return out
}

// emit writes an Event about the Canary, as the controller's recorder does.
func emit(t *testing.T, cl client.Client, can *v1alpha1.Canary, msg string) {
	t.Helper()
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: can.Name + ".", Namespace: can.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Canary", APIVersion: v1alpha1.GroupVersion.String(),
			Namespace: can.Namespace, Name: can.Name, UID: can.UID},
		Reason: "DashboardProbe", Message: msg, Type: corev1.EventTypeNormal, Count: 1,
		FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "dashboard-test"},
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := cl.Create(ctx, ev); err != nil {
		t.Fatalf("event %s: %v", msg, err)
	}
}

// readOnlyUser is a config impersonating a user bound to a Role that may
// read Canaries, their records and Events in ns, and change nothing.
func readOnlyUser(t *testing.T, c *testenv.Cluster, ns string) *rest.Config {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	read := []string{"get", "list", "watch"}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "sluice-viewer", Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"canaries", "canaryrevisions"}, Verbs: read},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: read},
	}}
	if _, err := c.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const user = "viewer@example.com"
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "sluice-viewer", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	if _, err := c.Client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	return cfg
}

func waitCanary(t *testing.T, cl client.Client, ns, name, what string, ok func(*v1alpha1.Canary) bool) *v1alpha1.Canary {
	t.Helper()
	var got v1alpha1.Canary
	testenv.Eventually(t, 90*time.Second, "canary "+what, func(ctx context.Context) error {
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &got); err != nil {
			return err
		}
		if !ok(&got) {
			return fmt.Errorf("phase %s, weight %d: %s", got.Status.Phase, got.Status.CanaryWeight, got.Status.Message)
		}
		return nil
	})
	return &got
}

// finalize deletes the Canary while its controller still runs.
func finalize(t *testing.T, cl client.Client, can *v1alpha1.Canary) {
	_ = cl.Delete(context.Background(), can)
	testenv.Eventually(t, 30*time.Second, "canary finalized", func(ctx context.Context) error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(can), &v1alpha1.Canary{}); err == nil {
			return errors.New("still there")
		}
		return nil
	})
}

func deployment(ns, name string, labels map[string]string, tmpl *corev1.PodTemplateSpec) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: *tmpl},
	}
}

func gatewayRouter() v1alpha1.RouterSpec {
	return v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}}}
}

func setImage(t *testing.T, cl client.Client, ns, name, image string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var d appsv1.Deployment
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := cl.Patch(ctx, &d, patch); err != nil {
		t.Fatal(err)
	}
}
