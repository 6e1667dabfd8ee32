package e2e_test

import (
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// (b) Gateway API mode through Traefik's kubernetesgateway provider: the
// HTTPRoute Sluice generates, accepted by Traefik (Sluice waits for
// Accepted at each generation), carries the declared shares within ±2
// points at every step, with no failed request.
func (w *world) gatewayAPIRelease(t *testing.T) {
	ns, _ := w.namespace(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(w.traefik.WebURL, "http://"))
	p, _ := strconv.Atoi(port)
	class := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "traefik-" + ns},
		Spec: gwv1.GatewayClassSpec{ControllerName: "traefik.io/gateway-controller"}}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "public", Namespace: ns},
		Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(class.Name), Listeners: []gwv1.Listener{{
			Name: "web", Port: gwv1.PortNumber(p), Protocol: gwv1.HTTPProtocolType}}}}
	steps := []v1alpha1.Step{setWeight(20), pause(15 * time.Second), setWeight(50), pause(15 * time.Second)}
	c := canary(ns, "shop", nil, steps...)
	c.Spec.Router = v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{
		ParentRefs: []gwv1.ParentReference{{Name: "public"}},
		Hostnames:  []gwv1.Hostname{gwv1.Hostname(host(ns))},
	}}
	t.Cleanup(func() { _ = w.cl.Delete(t.Context(), class) })
	w.deploy(t, ns, class, gw, app(ns, "shop", "v1", 0), c)

	tl := w.watch(t, ns, "shop", httpRouteShare)
	load := w.plainLoad(ns)
	wait(2 * time.Second)
	released := time.Now()
	w.release(t, ns, "shop", "v2", 0)
	w.waitFor(t, ns, "shop", v1alpha1.PhaseSucceeded, 3*time.Minute)
	wait(5 * time.Second)
	results := load.Stop()
	tl.end()

	tb := &table{title: "(b) Gateway API mode (Traefik's kubernetesgateway provider): canary to promotion"}
	measureSteps(t, tb, tl, results, steps, "v2")
	all := window(results, "plain", released, time.Now())
	_, fails := share(all, "v2")
	tb.add("release, in all", "", math.NaN(), len(all), fails)
	tb.print(t)
	checkTransitions(t, "(b) transitions, from the new revision to the end", tl, results, "shop", released, time.Now())
	if fails != 0 {
		explainFailures(t, tl, all)
		t.Errorf("%d of %d requests failed from the first step through promotion and finalise", fails, len(all))
	}
}
