package convert

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// HandoverSuffix ends the names of the hand-over Service and HTTPRoute:
// <apex>-handover.
const HandoverSuffix = "-handover"

// HandoverLabel is the pod label the hand-over Service selects. Step 2
// adds it to your Deployment's pod template; Sluice copies the template's
// labels to its primary, so the label is on your Deployment's pods until
// Sluice scales it to 0 (once Initialized) and on Sluice's primary pods
// from before that on: the Service never runs out of pods.
const HandoverLabel = "sluice.dev/handover"

// flaggerHandover builds what switching a live service from the Flagger
// Canary to c needs: a Service selecting the pods labelled HandoverLabel
// (your Deployment's, then Sluice's primary's) and, for
// the Gateway API, an HTTPRoute attached like Flagger's that sends every
// request to it. The steps, in order, are the comment of the first
// object. Flagger names its Services and route after the apex Service,
// as Sluice does, so they must be gone before Sluice writes its own; the
// hand-over objects carry the traffic in between.
func flaggerHandover(c *v1alpha1.Canary) []Output {
	ns, target, apex := c.Namespace, c.Spec.TargetRef.Name, c.Spec.GetServiceName()
	name := apex + HandoverSuffix

	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{HandoverLabel: apex},
			Ports: []corev1.ServicePort{{
				Name: c.Spec.Service.GetPortName(), Port: c.Spec.Service.Port,
				TargetPort: c.Spec.Service.GetTargetPort(), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
	if svc.Spec.Ports[0].TargetPort.String() == "0" {
		svc.Spec.Ports[0].TargetPort.IntVal = c.Spec.Service.Port
	}

	k, nsFlag := "kubectl -n "+ns+" ", " -n "+ns
	if ns == "" {
		k, nsFlag = "kubectl ", ""
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	gateway := c.Spec.Router.GatewayAPI != nil
	carriers := "this Service carries"
	if gateway {
		carriers = "this Service and the HTTPRoute after it carry"
	}
	line("Hand-over for Canary %s (convert --handover): %s the traffic", c.Name, carriers)
	line("while Flagger's objects go and Sluice's come (both use the names %s,", apex)
	line("%s-primary, %s-canary). In this order, with traffic running:", apex, apex)
	line(" 1. Wait until no release runs (Flagger's Canary Succeeded or Initialized); suspend it:")
	line("    %spatch canary.flagger.app %s --type=merge -p '{\"spec\":{\"suspend\":true,\"revertOnDeletion\":false}}'", k, c.Name)
	line(" 2. Label your Deployment's pods %s=%s and scale it (Flagger keeps it", HandoverLabel, apex)
	line("    at 0) to the primary's replicas; wait until it is rolled out. Sluice copies the")
	line("    label to its primary, so this Service still has pods when Sluice scales your")
	line("    Deployment to 0 at step 5 (keep the label, or drop it in a later release):")
	line("    %spatch deployment %s --type=merge -p '{\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"%s\":\"%s\"}}}}}'", k, target, HandoverLabel, apex)
	line("    %sscale deployment %s --replicas=$(%sget deployment %s-primary -o jsonpath='{.spec.replicas}')", k, target, k, target)
	line("    %srollout status deployment %s", k, target)
	if gateway {
		line(" 3. Apply the Service and HTTPRoute %s (kubectl apply -f this file, once step 2", name)
		line("    is done for each Canary in it); wait until the route is accepted:")
		line("    %swait httproute %s --for=jsonpath='{.status.parents[0].conditions[?(@.type==\"Accepted\")].status}'=True", k, name)
		line("    Flagger's route and this one now match the same requests; which one the gateway")
		line("    picks does not matter: both reach the same revision.")
		line(" 4. Delete Flagger's Canary but not what it owns, then its route, then (once the")
		line("    gateway has reloaded, a few seconds) its Services and primary. The garbage")
		line("    collector would delete them in any order, and a route left without its backends")
		line("    fails the requests the gateway gives it.")
		line("    %sdelete canary.flagger.app %s --cascade=orphan", k, c.Name)
		line("    %sdelete httproute %s", k, apex)
		line("    sleep 5")
		line("    %sdelete service %s %s-primary %s-canary", k, apex, apex, apex)
		line("    %sdelete deployment %s-primary", k, target)
		line(" 5. Apply the converted manifests (the Sluice Canary %s); wait until", c.Name)
		line("    `kubectl sluice get %s%s` says Initialized (its HTTPRoute %s carries traffic).", c.Name, nsFlag, c.Name)
		line(" 6. Delete the HTTPRoute %s, then, once the gateway has reloaded, the Service:", name)
		line("    %sdelete httproute %s", k, name)
		line("    sleep 5")
		line("    %sdelete service %s", k, name)
	} else if c.Spec.Router.Istio != nil {
		istioHandover(line, k, nsFlag, c, name)
	} else if ng := c.Spec.Router.NGINX; ng != nil {
		line(" 3. Apply the Service %s (kubectl apply -f this file). In your Ingress %s, replace", name, ng.Ingress)
		line("    the backend service %s with %s (same port); wait until ingress-nginx serves the change.", apex, name)
		line(" 4. Delete Flagger's Canary; wait until what it owned is gone:")
		line("    %sdelete canary.flagger.app %s", k, c.Name)
		line("    %swait --for=delete ingress/%s-canary service/%s service/%s-primary service/%s-canary deployment/%s-primary --timeout=2m", k, ng.Ingress, apex, apex, apex, target)
		line(" 5. Apply the converted manifests (the Sluice Canary %s); wait until", c.Name)
		line("    `kubectl sluice get %s%s` says Initialized (its Service %s selects the primary).", c.Name, nsFlag, apex)
		line(" 6. In your Ingress, replace the backend service %s with %s again; once", name, apex)
		line("    ingress-nginx serves the change, delete this Service:")
		line("    sleep 5")
		line("    %sdelete service %s", k, name)
	} else {
		line(" 3. Apply the Service %s (kubectl apply -f this file), and wait until Traefik has it:", name)
		line("    an IngressRoute pointed at a Service Traefik does not have yet answers 404 until")
		line("    it does (a probe IngressRoute on a host of its own, to this Service, answers once")
		line("    it has). Then, in the IngressRoute that references TraefikService %s, replace", apex)
		line("    that service with {name: %s, port: %d}; wait until Traefik serves the change.", name, c.Spec.Service.Port)
		line(" 4. Delete Flagger's Canary; wait until what it owned is gone:")
		line("    %sdelete canary.flagger.app %s", k, c.Name)
		line("    %swait --for=delete traefikservice/%s service/%s service/%s-primary service/%s-canary deployment/%s-primary --timeout=2m", k, apex, apex, apex, apex, target)
		line(" 5. Apply the converted manifests (the Sluice Canary %s); wait until", c.Name)
		line("    `kubectl sluice get %s%s` says Initialized (its TraefikService %s written).", c.Name, nsFlag, c.Name)
		line(" 6. In the IngressRoute, replace the service {name: %s, port: %d} with", name, c.Spec.Service.Port)
		line("    {kind: TraefikService, name: %s}; once Traefik serves the change, delete this Service:", c.Name)
		line("    sleep 5")
		line("    %sdelete service %s", k, name)
	}
	out := []Output{{Object: svc, Comment: b.String(), Handover: true}}

	if gw := c.Spec.Router.GatewayAPI; gw != nil {
		port := gwv1.PortNumber(c.Spec.Service.Port)
		rule := gwv1.HTTPRouteRule{
			Matches:  gw.Matches,
			Filters:  gw.Filters,
			Timeouts: gw.Timeouts,
			BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: &port},
			}}},
		}
		route := &gwv1.HTTPRoute{
			TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "HTTPRoute"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: gwv1.HTTPRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: gw.ParentRefs},
				Hostnames:       gw.Hostnames,
				Rules:           []gwv1.HTTPRouteRule{rule},
			},
		}
		out = append(out, Output{Object: route, Handover: true, Comment: fmt.Sprintf(
			"Hand-over route for Canary %s: attached, matched and filtered like Flagger's route %s,\nevery request to the Service %s. Delete it at step 6.\n", c.Name, apex, name)})
	}
	return out
}

// istioHandover writes the steps of an Istio switch-over. Clients in the
// mesh reach the apex Service by its name, so it is never deleted: the
// VirtualService Flagger left, then the apex Service itself, send to the
// hand-over Service while the copies change hands, and Sluice adopts the
// apex Service and the VirtualService.
func istioHandover(line func(string, ...any), k, nsFlag string, c *v1alpha1.Canary, name string) {
	apex, target := c.Spec.GetServiceName(), c.Spec.TargetRef.Name
	line(" 3. Apply the Service %s (kubectl apply -f this file). Delete Flagger's Canary but", name)
	line("    not what it owns (the objects stay, with no owner and nobody changing them):")
	line("    %sdelete canary.flagger.app %s --cascade=orphan", k, c.Name)
	line(" 4. Send the mesh's traffic to the hand-over Service: in the VirtualService %s,", apex)
	line("    make the route's only destination {host: %s} (weight 100); then point the apex", name)
	line("    Service %s at the same pods, for clients outside the mesh:", apex)
	line("    %spatch service %s --type=merge -p '{\"spec\":{\"selector\":{\"%s\":\"%s\",\"app\":null}}}'", k, apex, HandoverLabel, apex)
	line("    (remove every other key of its selector the same way). Once the sidecars have")
	line("    the change (a few seconds), delete the rest of Flagger's objects:")
	line("    sleep 5")
	line("    %sdelete service %s-primary %s-canary", k, apex, apex)
	line("    %sdelete destinationrule %s-primary %s-canary --ignore-not-found", k, apex, apex)
	line("    %sdelete deployment %s-primary", k, target)
	line(" 5. Apply the converted manifests (the Sluice Canary %s); wait until", c.Name)
	line("    `kubectl sluice get %s%s` says Initialized: Sluice adopts the apex Service (its", c.Name, nsFlag)
	line("    selector moves to the primary once Ready) and writes its VirtualService %s.", c.Name)
	if c.Name != apex {
		line("    Then delete Flagger's VirtualService %s (two for one host conflict):", apex)
		line("    %sdelete virtualservice %s", k, apex)
	}
	line(" 6. Once the sidecars have the change, delete this Service:")
	line("    sleep 5")
	line("    %sdelete service %s", k, name)
	line("    Not proven here: no Istio data plane runs in Sluice's test harness (docs/migrate-from-flagger.md).")
}
