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

// flaggerDefaultSelector is the label Flagger's default selector reads
// (its -selector-labels flag: app, name, app.kubernetes.io/name).
const flaggerDefaultSelector = "app"

// flaggerHandover builds what switching a live service from the Flagger
// Canary to c needs: a Service selecting the target's own pods and, for
// the Gateway API, an HTTPRoute attached like Flagger's that sends every
// request to it. The steps, in order, are the comment of the first
// object. Flagger names its Services and route after the apex Service,
// as Sluice does, so they must be gone before Sluice writes its own; the
// hand-over objects carry the traffic in between.
func flaggerHandover(in input, c *v1alpha1.Canary) []Output {
	ns, target, apex := c.Namespace, c.Spec.TargetRef.Name, c.Spec.GetServiceName()
	name := apex + HandoverSuffix
	selector, fromDeployment := targetSelector(in, ns, target)

	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: selector,
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
	carriers := "this Service carries"
	if c.Spec.Router.GatewayAPI != nil {
		carriers = "this Service and the HTTPRoute after it carry"
	}
	line("Hand-over for Canary %s (convert --handover): %s", c.Name, carriers)
	line("the traffic while Flagger's objects go and Sluice's come (both use the")
	line("names %s, %s-primary, %s-canary). In this order, with traffic running:", apex, apex, apex)
	line(" 1. Wait until no release runs (Flagger's Canary Succeeded or Initialized), then")
	line("    %spatch canary.flagger.app %s --type=merge -p '{\"spec\":{\"suspend\":true,\"revertOnDeletion\":false}}'", k, c.Name)
	line(" 2. Scale your Deployment (Flagger keeps it at 0) to the primary's replicas; wait until it is rolled out:")
	line("    %sscale deployment %s --replicas=$(%sget deployment %s-primary -o jsonpath='{.spec.replicas}')", k, target, k, target)
	line("    %srollout status deployment %s", k, target)
	if fromDeployment {
		line(" 3. Apply the hand-over file (convert --handover <file>) for Service %s (its selector is Deployment %s's).", name, target)
	} else {
		line(" 3. Apply the hand-over file (convert --handover <file>) for Service %s; its selector is Flagger's", name)
		line("    default label (%s: %s): check it against your Deployment's spec.selector.matchLabels first.", flaggerDefaultSelector, target)
	}
	switch {
	case c.Spec.Router.GatewayAPI != nil:
		line("    and the HTTPRoute %s; wait until the Gateway accepts the route:", name)
		line("    %swait httproute %s --for=jsonpath='{.status.parents[0].conditions[?(@.type==\"Accepted\")].status}'=True", k, name)
		line("    Until step 4 removes Flagger's route, both routes match the same requests and both")
		line("    reach the same revision: which one a gateway picks does not matter.")
		line(" 4. Delete Flagger's Canary but not what it owns, then Flagger's route; once the")
		line("    gateway has reloaded (a few seconds), the Services and the primary it left:")
		line("    %sdelete canary.flagger.app %s --cascade=orphan", k, c.Name)
		line("    %sdelete httproute %s", k, apex)
		line("    sleep 5")
		line("    %sdelete service %s %s-primary %s-canary", k, apex, apex, apex)
		line("    %sdelete deployment %s-primary", k, target)
		line(" 5. Apply the converted manifests (the Sluice Canary %s); wait until `kubectl sluice get %s%s` says Initialized", c.Name, c.Name, nsFlag)
		line("    (its primary ready, its HTTPRoute %s accepted).", c.Name)
		line(" 6. Delete the HTTPRoute %s; once the gateway has reloaded, the Service:", name)
		line("    %sdelete httproute %s", k, name)
		line("    sleep 5")
		line("    %sdelete service %s", k, name)
	case c.Spec.Router.Traefik != nil:
		line("    In the IngressRoute that references TraefikService %s, replace that service with", apex)
		line("      {name: %s, port: %d}", name, c.Spec.Service.Port)
		line("    and wait until Traefik serves the change (a few seconds).")
		line(" 4. Delete Flagger's Canary; wait until what it owned is gone:")
		line("    %sdelete canary.flagger.app %s", k, c.Name)
		line("    %swait --for=delete traefikservice/%s service/%s service/%s-primary service/%s-canary deployment/%s-primary --timeout=2m", k, apex, apex, apex, apex, target)
		line(" 5. Apply the converted manifests (the Sluice Canary %s); wait until `kubectl sluice get %s%s` says Initialized", c.Name, c.Name, nsFlag)
		line("    (its primary ready, its TraefikService %s written).", c.Name)
		line(" 6. In the IngressRoute, replace the service {name: %s, port: %d} with", name, c.Spec.Service.Port)
		line("      {kind: TraefikService, name: %s}", c.Name)
		line("    and once Traefik serves the change (a few seconds), delete this Service:")
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

// targetSelector is the target Deployment's selector when it is among the
// objects read, else Flagger's default.
func targetSelector(in input, ns, target string) (map[string]string, bool) {
	if d := in.find("apps/", "Deployment", ns, target); d != nil {
		spec, _ := d["spec"].(map[string]any)
		sel, _ := spec["selector"].(map[string]any)
		ml, _ := sel["matchLabels"].(map[string]any)
		out := map[string]string{}
		for k, v := range ml {
			if s, ok := v.(string); ok {
				out[k] = s
			}
		}
		if len(out) > 0 {
			return out, true
		}
	}
	return map[string]string{flaggerDefaultSelector: target}, false
}
