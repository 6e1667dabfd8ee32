package e2e_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/convert"
	"github.com/sluice-dev/sluice/internal/dataplane"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// The switch-over from Flagger (docs/migrate-from-flagger.md, and the
// steps `kubectl sluice convert --handover` prints): a service Flagger
// routes is handed to Sluice with steady traffic running, and no request
// may fail or go unrouted.
//
// Flagger itself does not run here. What a Flagger Canary leaves in the
// cluster is made by the test as Flagger makes it: the apex, -primary and
// -canary Services (the apex and -primary select the primary's pods),
// the <target>-primary Deployment serving, your Deployment at 0
// replicas, and the route (an HTTPRoute named after the apex Service),
// all owned by a stand-in for the Flagger Canary (a ConfigMap), so that
// deleting it has the real garbage collector do what deleting the Canary
// would.
//
// Both of the modes convert --handover writes steps for and a proxy of
// this harness can carry: Gateway API (an HTTPRoute) and Traefik (a
// weighted TraefikService behind your IngressRoute). In Traefik mode the
// TraefikServices, Flagger's and Sluice's, say nativeLB: this harness's
// Traefik reaches pods through ClusterIPs (nativeLBByDefault), which
// Traefik does not apply to TraefikServices, and kwok's pod IPs answer
// nothing. A real Flagger writes no nativeLB; nothing else differs.

// flaggerCanary is the Flagger Canary being replaced, as its user wrote it.
func flaggerCanary(ns string, traefik bool) string {
	if traefik {
		return fmt.Sprintf(`apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: shop, namespace: %s}
spec:
  provider: traefik
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: shop}
  service:
    port: 80
    targetPort: 8080
  analysis: {interval: 10s, threshold: 2, stepWeight: 20, maxWeight: 50}
`, ns)
	}
	return fmt.Sprintf(`apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: shop, namespace: %s}
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: shop}
  service:
    port: 80
    targetPort: 8080
    hosts: [%s]
    gatewayRefs: [{name: public}]
  analysis: {interval: 10s, threshold: 2, stepWeight: 20, maxWeight: 50}
`, ns, host(ns))
}

// handoverRun is one switch-over: its moments, for the table.
type handoverRun struct {
	marks []mark
}

type mark struct {
	at   time.Time
	what string
}

func (h *handoverRun) mark(what string) { h.marks = append(h.marks, mark{at: time.Now(), what: what}) }

// (e) A Flagger Canary switched over to Sluice by the documented steps,
// with the objects convert --handover printed, through the Gateway API
// and through Traefik: every request is answered 2xx by a pod
// throughout, and Sluice's Canary ends Initialized with its primary
// answering everything.
func (w *world) flaggerHandover(t *testing.T) {
	t.Run("gatewayapi", func(t *testing.T) { w.flaggerHandoverVia(t, false) })
	t.Run("traefik", func(t *testing.T) { w.flaggerHandoverVia(t, true) })
}

func (w *world) flaggerHandoverVia(t *testing.T, traefik bool) {
	ctx := t.Context()
	ns, _ := w.namespace(t)

	// What convert --handover prints for the Flagger Canary.
	objs, err := convert.Decode(strings.NewReader(flaggerCanary(ns, traefik)))
	if err != nil {
		t.Fatal(err)
	}
	rest, ho := convert.Convert(objs, convert.Options{Handover: true}).SplitHandover()
	var handover []client.Object
	for _, o := range ho.Outputs {
		handover = append(handover, o.Object)
	}
	var sluiceCanary *v1alpha1.Canary
	if len(rest.Outputs) > 0 {
		sluiceCanary, _ = rest.Outputs[0].Object.(*v1alpha1.Canary)
	}
	wantHandover := 2 // a Service and an HTTPRoute
	if traefik {
		wantHandover = 1 // a Service
	}
	if len(rest.Outputs) != 1 || sluiceCanary == nil || len(handover) != wantHandover {
		t.Fatalf("convert --handover wrote %d outputs and %d hand-over objects: want a Canary and %d hand-over objects", len(rest.Outputs), len(handover), wantHandover)
	}
	sluiceCanary.Labels = map[string]string{"sluice.dev/instance": instanceID}
	if traefik {
		native := true
		sluiceCanary.Spec.Router.Traefik.NativeLB = &native // this harness's Traefik: see above
	}

	// What Flagger left: owned by a stand-in for its Canary.
	if !traefik {
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(w.traefik.WebURL, "http://"))
		p, _ := strconv.Atoi(port)
		class := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "traefik-" + ns},
			Spec: gwv1.GatewayClassSpec{ControllerName: "traefik.io/gateway-controller"}}
		gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "public", Namespace: ns},
			Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(class.Name), Listeners: []gwv1.Listener{{
				Name: "web", Port: gwv1.PortNumber(p), Protocol: gwv1.HTTPProtocolType}}}}
		t.Cleanup(func() { _ = w.cl.Delete(context.Background(), class) })
		w.create(t, class, gw)
	}
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "flagger-canary-shop", Namespace: ns}}
	w.create(t, owner)
	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID,
		Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true)}
	target := app(ns, "shop", "v1", 0)
	target.Spec.Replicas = ptrTo(int32(0))
	primary := app(ns, "shop-primary", "v1", 0)
	svc := func(name, selects string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": selects},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	}
	owned := []client.Object{primary, svc("shop", "shop-primary"), svc("shop-primary", "shop-primary"), svc("shop-canary", "shop")}
	// The route, last: Flagger's HTTPRoute, or its TraefikService behind
	// the user's IngressRoute (not Flagger's: it stays).
	var ingressRoute *unstructured.Unstructured
	if traefik {
		owned = append(owned, w.unstructured(t, fmt.Sprintf(`apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: shop, namespace: %s}
spec:
  weighted:
    services:
    - {name: shop-primary, port: 80, weight: 100, nativeLB: true}
    - {name: shop-canary, port: 80, weight: 0, nativeLB: true}
`, ns)))
		ingressRoute = w.traefikServiceRoute(t, ns, "shop")
	} else {
		owned = append(owned, w.unstructured(t, fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: %s}
spec:
  parentRefs: [{name: public}]
  hostnames: [%s]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs:
    - {name: shop-primary, port: 80, weight: 100}
    - {name: shop-canary, port: 80, weight: 0}
`, ns, host(ns))))
	}
	for _, o := range owned {
		o.SetOwnerReferences([]metav1.OwnerReference{ref})
	}
	w.create(t, append([]client.Object{target}, owned...)...)
	if ingressRoute != nil {
		w.create(t, ingressRoute)
	}
	w.readyReplicas(t, ns, "shop-primary", 2)
	w.serving(t, ns, "v1")
	flaggerPods := w.podNames(t, ns, "shop-primary")

	// The switch, step by step, with steady traffic.
	var run handoverRun
	load := w.plainLoad(ns)
	wait(3 * time.Second)
	run.mark("1. before (Flagger's route)")

	// 2. Your Deployment's pods labelled for the hand-over Service, and
	// scaled to the primary's replicas.
	w.labelAndScale(t, ns, "shop", map[string]string{convert.HandoverLabel: "shop"}, 2)
	w.readyReplicas(t, ns, "shop", 2)
	run.mark("2. target labelled, scaled, ready")
	targetPods := w.podNames(t, ns, "shop")

	// 3. The hand-over Service and route, until the route is accepted;
	// with Traefik, the hand-over Service, and the IngressRoute pointed
	// at it until Traefik serves the change.
	w.create(t, handover...)
	if traefik {
		// Pointed at a Service its cache does not hold yet, Traefik drops
		// the whole router and answers 404 until it does (416 requests in
		// a run on a loaded machine). So first a probe route of its own,
		// on another host, until Traefik answers through the hand-over
		// Service; then the user's route.
		handoverService := map[string]any{"name": "shop" + convert.HandoverSuffix, "port": int64(80)}
		probe := testenv.IngressRoute(ns, "shop-handover-probe", "probe."+host(ns), handoverService)
		w.create(t, probe)
		w.servingAt(t, "probe."+host(ns), "v1")
		w.delete(t, probe)
		w.routeService(t, ingressRoute, handoverService)
		wait(5 * time.Second)
	} else {
		w.routeAccepted(t, ns, "shop"+convert.HandoverSuffix)
	}
	run.mark("3. hand-over applied")

	// 4. Flagger's Canary deleted. Gateway API: orphaning what it owns;
	// then its route, then (once the gateway reloaded) the rest. Traefik:
	// nothing it owns carries traffic any more, so with what it owns.
	if traefik {
		w.delete(t, owner)
	} else {
		if err := w.cl.Delete(ctx, owner, client.PropagationPolicy(metav1.DeletePropagationOrphan)); err != nil {
			t.Fatal(err)
		}
		w.gone(t, owner)
		w.delete(t, owned[len(owned)-1])
		wait(5 * time.Second)
		w.delete(t, owned[:len(owned)-1]...)
	}
	w.gone(t, append([]client.Object{owner}, owned...)...)
	run.mark("4. Flagger's objects gone")

	// 5. Sluice's Canary, until Initialized.
	sluiceCanary.Namespace = ns
	w.create(t, sluiceCanary)
	w.waitFor(t, ns, "shop", v1alpha1.PhaseInitialized, 60*time.Second)
	run.mark("5. Sluice's Canary Initialized")
	// Initialized, Sluice scales your Deployment to 0: the hand-over
	// still carries requests then, to Sluice's primary by the label.
	w.readyReplicas(t, ns, "shop", 0)
	wait(3 * time.Second)
	run.mark("5. your Deployment at 0")

	// 6. The hand-over route deleted (Traefik: the IngressRoute pointed
	// back at the TraefikService, now Sluice's), then (once the proxy
	// reloaded) the hand-over Service.
	if traefik {
		w.routeService(t, ingressRoute, map[string]any{"kind": "TraefikService", "name": sluiceCanary.Name})
	} else {
		w.delete(t, handover[1])
	}
	wait(5 * time.Second)
	w.delete(t, handover[0])
	w.gone(t, handover...)
	run.mark("6. hand-over deleted")
	wait(5 * time.Second)
	results := load.Stop()
	run.mark("end")

	// Every request answered 200 by a pod; the last ones by Sluice's
	// primary.
	var c v1alpha1.Canary
	if err := w.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &c); err != nil {
		t.Fatal(err)
	}
	if c.Status.Phase != v1alpha1.PhaseInitialized {
		t.Errorf("Sluice's Canary ended %s (%s: %s), want Initialized", c.Status.Phase, c.Status.Reason, c.Status.Message)
	}
	sluicePrimary := w.podNames(t, ns, "shop-primary")
	for p := range flaggerPods {
		delete(sluicePrimary, p)
	}
	who := func(r dataplane.Result) string {
		switch {
		case r.Pod == "":
			return "none"
		case flaggerPods[r.Pod]:
			return "Flagger's primary"
		case sluicePrimary[r.Pod]:
			return "Sluice's primary"
		case targetPods[r.Pod]:
			return "your Deployment"
		}
		return "other pod " + r.Pod
	}
	var b strings.Builder
	mode := "Gateway API (HTTPRoute)"
	if traefik {
		mode = "Traefik (TraefikService behind an IngressRoute)"
	}
	fmt.Fprintf(&b, "\n(e) switching a Flagger Canary to Sluice, %s, %d requests/s\n| %-34s | %6s | %8s | %8s | %s |\n", mode, rate, "until", "at", "requests", "failures", "answered by")
	from := results[0].At
	failed := 0
	for _, m := range run.marks {
		rs := window(results, "plain", from, m.at)
		counts := map[string]int{}
		fails := 0
		for _, r := range rs {
			if r.Code < 200 || r.Code > 299 || r.Pod == "" {
				fails++
			}
			counts[who(r)]++
		}
		failed += fails
		fmt.Fprintf(&b, "| %-34s | %5.1fs | %8d | %8d | %s |\n", m.what, m.at.Sub(results[0].At).Seconds(), len(rs), fails, byCount(counts))
		from = m.at
	}
	switchStart, switchEnd := run.marks[0].at, run.marks[len(run.marks)-2].at
	fmt.Fprintf(&b, "switch (steps 2 to 6): %s; in all %d requests, %d failed or unrouted", switchEnd.Sub(switchStart).Round(100*time.Millisecond), len(results), failed)
	t.Log(b.String())
	if failed != 0 {
		codes := map[string]int{}
		for _, r := range results {
			if r.Code < 200 || r.Code > 299 || r.Pod == "" {
				codes[fmt.Sprintf("%d %s", r.Code, r.Error)]++
			}
		}
		t.Errorf("%d of %d requests failed or went unrouted during the switch: %v", failed, len(results), codes)
	}
	last := window(results, "plain", run.marks[len(run.marks)-2].at, time.Now())
	for _, r := range last {
		if !sluicePrimary[r.Pod] {
			t.Errorf("after the switch a request was answered by %s (%s), want Sluice's primary", r.Pod, who(r))
			break
		}
	}
	if len(last) == 0 || len(sluicePrimary) == 0 {
		t.Errorf("after the switch: %d requests, %d pods of Sluice's primary", len(last), len(sluicePrimary))
	}
}

// routeService makes service the only service of the IngressRoute's
// route.
func (w *world) routeService(t *testing.T, ir *unstructured.Unstructured, service map[string]any) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "ingressroute "+ir.GetName()+" updated", func(ctx context.Context) error {
		var have unstructured.Unstructured
		have.SetGroupVersionKind(ir.GroupVersionKind())
		if err := w.cl.Get(ctx, client.ObjectKeyFromObject(ir), &have); err != nil {
			return err
		}
		routes, _, _ := unstructured.NestedSlice(have.Object, "spec", "routes")
		if len(routes) != 1 {
			return fmt.Errorf("%d routes", len(routes))
		}
		r := routes[0].(map[string]any)
		r["services"] = []any{service}
		if err := unstructured.SetNestedSlice(have.Object, routes, "spec", "routes"); err != nil {
			return err
		}
		return w.cl.Update(ctx, &have)
	})
}

func byCount(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// traefikServiceRoute is the user's IngressRoute shop, for the test's
// host, sending everything to the TraefikService named.
func (w *world) traefikServiceRoute(t *testing.T, ns, service string) *unstructured.Unstructured {
	return testenv.IngressRoute(ns, "shop", host(ns), map[string]any{"kind": "TraefikService", "name": service})
}

func (w *world) unstructured(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func (w *world) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := w.cl.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func (w *world) delete(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := w.cl.Delete(t.Context(), o); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("delete %T %s: %v", o, o.GetName(), err)
		}
	}
}

// gone waits until none of objs exists.
func (w *world) gone(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		testenv.Eventually(t, 60*time.Second, fmt.Sprintf("%T %s deleted", o, o.GetName()), func(ctx context.Context) error {
			probe := o.DeepCopyObject().(client.Object)
			err := w.cl.Get(ctx, client.ObjectKeyFromObject(o), probe)
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("still there")
		})
	}
}

// labelAndScale adds labels to a Deployment's pod template and sets its
// replicas.
func (w *world) labelAndScale(t *testing.T, ns, name string, labels map[string]string, replicas int32) {
	t.Helper()
	var d appsv1.Deployment
	if err := w.cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	maps.Copy(d.Spec.Template.Labels, labels)
	d.Spec.Replicas = &replicas
	if err := w.cl.Patch(t.Context(), &d, patch); err != nil {
		t.Fatal(err)
	}
}

func (w *world) readyReplicas(t *testing.T, ns, name string, n int32) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("deployment %s/%s %d ready", ns, name, n), func(ctx context.Context) error {
		var d appsv1.Deployment
		if err := w.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
			return err
		}
		if d.Status.ReadyReplicas != n || d.Status.UpdatedReplicas != n {
			return fmt.Errorf("%d ready, %d updated", d.Status.ReadyReplicas, d.Status.UpdatedReplicas)
		}
		return nil
	})
}

// routeAccepted waits until the Gateway accepts the HTTPRoute with its
// references resolved.
func (w *world) routeAccepted(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "httproute "+name+" accepted", func(ctx context.Context) error {
		var r gwv1.HTTPRoute
		if err := w.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil {
			return err
		}
		for _, p := range r.Status.Parents {
			ok := 0
			for _, c := range p.Conditions {
				if (c.Type == string(gwv1.RouteConditionAccepted) || c.Type == string(gwv1.RouteConditionResolvedRefs)) &&
					c.Status == metav1.ConditionTrue && c.ObservedGeneration == r.Generation {
					ok++
				}
			}
			if ok == 2 {
				return nil
			}
		}
		return fmt.Errorf("status %+v", r.Status.Parents)
	})
}

// podNames are the names of the pods labelled app=<app>.
func (w *world) podNames(t *testing.T, ns, appLabel string) map[string]bool {
	t.Helper()
	var pods corev1.PodList
	if err := w.cl.List(t.Context(), &pods, client.InNamespace(ns), client.MatchingLabels{"app": appLabel}); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range pods.Items {
		out[p.Name] = true
	}
	return out
}
