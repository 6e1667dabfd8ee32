package convert

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Argo Rollouts plugin names Sluice has a router for, as the plugins
// name their configuration: argoproj-labs' Gateway API plugin and
// HashiCorp's Consul plugin.
const (
	argoGatewayPlugin = "argoproj-labs/gatewayAPI"
	argoConsulPlugin  = "hashicorp/consul"
)

func argoRollout(t *tracker, in input) []Output {
	spec := t.at("spec")
	name, ns := nameOf(t.root)
	c := &v1alpha1.Canary{ObjectMeta: objectMeta(t, name)}
	c.APIVersion, c.Kind = v1alpha1.GroupVersion.String(), "Canary"
	s := &c.Spec
	s.TargetRef = v1alpha1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name}
	var outs []Output

	// The workload: a Deployment of the inline template, or the one named.
	var tmpl *corev1.PodTemplateSpec
	deployment := true
	if wr := spec.get("workloadRef"); wr.ok {
		if wr.get("kind").str() != "Deployment" {
			wr.dropf("Sluice releases Deployments only, not a %s: no Canary was written", wr.get("kind").str())
			deployment = false
		} else {
			wr.get("apiVersion").carry("Canary spec.targetRef.apiVersion")
			wr.get("kind").carry("Canary spec.targetRef.kind")
			s.TargetRef.Name = wr.get("name").carry("Canary spec.targetRef.name").str()
		}
		wr.get("scaleDown").drop("Sluice scales the Deployment named to 0 whenever its primary copy <name>-primary serves alone (once Initialized, after each promotion), whatever scaleDown says")
	}
	if tp := spec.get("template"); tp.ok {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: objectMeta(t, name).Labels}}
		d.APIVersion, d.Kind = "apps/v1", "Deployment"
		if err := fromJSON(tp.v, &d.Spec.Template); err != nil {
			tp.dropf("not a pod template: %v", err)
		} else {
			tp.carry("Deployment spec.template")
			tmpl = &d.Spec.Template
		}
		if err := fromJSON(spec.get("selector").v, &d.Spec.Selector); err == nil {
			spec.get("selector").carry("Deployment spec.selector")
		}
		if r, ok := spec.get("replicas").carry("Deployment spec.replicas").int(); ok {
			d.Spec.Replicas = ptr(int32(r))
		}
		if r, ok := spec.get("minReadySeconds").carry("Deployment spec.minReadySeconds").int(); ok {
			d.Spec.MinReadySeconds = int32(r)
		}
		if r, ok := spec.get("revisionHistoryLimit").carry("Deployment spec.revisionHistoryLimit").int(); ok {
			d.Spec.RevisionHistoryLimit = ptr(int32(r))
		}
		cs := spec.get("strategy").get("canary")
		if bg := spec.get("strategy").get("blueGreen"); bg.ok {
			cs = bg
		}
		for _, k := range []string{"maxSurge", "maxUnavailable"} {
			v := cs.get(k)
			if !v.ok {
				continue
			}
			if d.Spec.Strategy.RollingUpdate == nil {
				d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
			}
			val := intstr.Parse(v.str())
			if k == "maxSurge" {
				d.Spec.Strategy.RollingUpdate.MaxSurge = &val
			} else {
				d.Spec.Strategy.RollingUpdate.MaxUnavailable = &val
			}
			v.translate("Deployment spec.strategy.rollingUpdate."+k, "how the canary Deployment rolls its own pods")
		}
		outs = append(outs, Output{Object: d})
	} else {
		for _, k := range []string{"replicas", "selector", "minReadySeconds", "revisionHistoryLimit"} {
			spec.get(k).dropf("with workloadRef, the Deployment's own %s applies", k)
		}
		for _, k := range []string{"maxSurge", "maxUnavailable"} {
			spec.get("strategy").get("canary").get(k).drop("with workloadRef, set it on the Deployment's rolling update")
			spec.get("strategy").get("blueGreen").get(k).drop("with workloadRef, set it on the Deployment's rolling update")
		}
	}

	s.Paused = spec.get("paused").carry("Canary spec.paused").bool()
	if d := seconds(spec.get("progressDeadlineSeconds")); d != nil {
		s.ProgressDeadline = d
		spec.get("progressDeadlineSeconds").translate("Canary spec.progressDeadline", "seconds written as a duration; Sluice does not count pauses toward it")
	}
	spec.get("progressDeadlineAbort").translate("Canary spec.progressDeadline", "Sluice always rolls back a release past its progress deadline")
	spec.get("restartAt").drop("Sluice does not restart pods; use kubectl rollout restart on the Deployment")
	spec.get("rollbackWindow").drop("Sluice releases every revision through the steps; a rollback is a new release (kubectl sluice undo)")
	spec.get("analysis").drop("Sluice keeps no AnalysisRuns; check results are in the Canary's status and Events")

	if bg := spec.get("strategy").get("blueGreen"); bg.ok {
		if !argoBlueGreen(bg, s, in, ns, tmpl) || !deployment {
			return outs
		}
		return append([]Output{{Object: c}}, append(outs, argoMetricTemplates(c, in, ns)...)...)
	}
	cs := spec.get("strategy").get("canary")
	if !cs.ok {
		return nil
	}
	argoServices(cs, s, in, ns, tmpl)
	routed := argoRouter(cs.get("trafficRouting"), s, in, ns, name)
	an := &v1alpha1.Analysis{}
	argoSteps(cs.get("steps"), s, an, in, ns)
	if bg := cs.get("analysis"); bg.ok {
		argoAnalysisRef(bg, an, in, ns, "Canary spec.analysis")
		bg.get("startingStep").drop("Sluice checks from the first step")
	}
	if len(an.Metrics) > 0 || len(an.Webhooks) > 0 {
		s.Analysis = an
	}
	for _, k := range []string{"canaryMetadata", "stableMetadata"} {
		cs.get(k).drop("Sluice adds no labels or annotations per copy; its own pod-template label tells the copies apart")
	}
	cs.get("antiAffinity").drop("Sluice sets no anti-affinity between the copies; add it to the pod template")
	cs.get("dynamicStableScale").drop("Sluice keeps the primary at full scale during a release")
	cs.get("scaleDownDelaySeconds").drop("Sluice scales the canary down once the route moved off it (after the router reports it, or a settle time)")
	cs.get("abortScaleDownDelaySeconds").drop("Sluice scales the canary down after a rollback once the route moved off it")
	cs.get("scaleDownDelayRevisionLimit").drop("Sluice keeps no old ReplicaSets running")
	cs.get("minPodsPerReplicaSet").drop("Sluice runs the canary at the Deployment's replicas")
	cs.get("pingPong").drop("Sluice has no ping-pong Services; it keeps <name>-primary and <name>-canary")
	if rp := cs.get("replicaProgressThreshold"); rp.ok {
		if v, ok := rp.get("value").int(); ok && rp.get("type").str() == "Percent" {
			s.CanaryReadyThreshold = ptr(int32(v))
			rp.translate("Canary spec.canaryReadyThreshold", "a percentage of the canary's replicas available before traffic moves")
		} else {
			rp.drop("a pod count: Sluice's ready threshold is a percentage (spec.canaryReadyThreshold)")
		}
	}
	if !routed || !deployment {
		return outs
	}
	return append([]Output{{Object: c}}, append(outs, argoMetricTemplates(c, in, ns)...)...)
}

// argoBlueGreen converts spec.strategy.blueGreen: a Canary without a
// router whose apex Service is the active one (its selector is the
// switch), and the blue/green settings of the same names. It reports
// whether a Canary can be written.
func argoBlueGreen(bg node, s *v1alpha1.CanarySpec, in input, ns string, tmpl *corev1.PodTemplateSpec) bool {
	const to = "Canary spec.strategy.blueGreen"
	active := bg.get("activeService")
	s.Service.Name = active.translate("Canary spec.service.name", "the apex Service: Sluice takes it over, and with no router its selector is the switch (the primary's pods, then the new revision's)").str()
	argoServicePort(active, s, in, ns, tmpl)
	b := &v1alpha1.BlueGreen{}
	if ps := bg.get("previewService").str(); ps != "" {
		b.PreviewService = ps
		bg.get("previewService").translate(to+".previewService", "Sluice takes it over and keeps it selecting the new revision's pods")
	}
	if n, ok := bg.get("previewReplicaCount").carry(to + ".previewReplicaCount").int(); ok && n > 0 {
		b.PreviewReplicaCount = ptr(int32(n))
	}
	if ap := bg.get("autoPromotionEnabled"); ap.ok {
		b.AutoPromotionEnabled = ptr(ap.carry(to + ".autoPromotionEnabled").bool())
	}
	if b.AutoPromotionEnabled != nil && !*b.AutoPromotionEnabled {
		bg.get("autoPromotionSeconds").drop("Argo Rollouts ignores it with autoPromotionEnabled: false (so does Sluice's CRD refuse the pair)")
	} else if n, ok := bg.get("autoPromotionSeconds").carry(to + ".autoPromotionSeconds").int(); ok && n > 0 {
		b.AutoPromotionSeconds = ptr(int32(n))
	}
	if d := seconds(bg.get("scaleDownDelaySeconds")); d != nil {
		b.ScaleDownDelay = d
		bg.get("scaleDownDelaySeconds").translate(to+".scaleDownDelay", "seconds written as a duration")
	} else if bg.get("scaleDownDelaySeconds").ok {
		b.ScaleDownDelay = &metav1.Duration{}
		bg.get("scaleDownDelaySeconds").translate(to+".scaleDownDelay", "0s")
	}
	an := &v1alpha1.Analysis{}
	for _, k := range []string{"prePromotionAnalysis", "postPromotionAnalysis"} {
		if a := bg.get(k); a.ok {
			argoAnalysisRef(a, an, in, ns, "Canary spec.analysis")
		}
	}
	if len(an.Metrics) > 0 || len(an.Webhooks) > 0 {
		s.Analysis = an
	}
	bg.get("abortScaleDownDelaySeconds").drop("an abort scales the new revision down once the traffic is back on the old copy")
	bg.get("scaleDownDelayRevisionLimit").drop("Sluice keeps one old copy, <name>-primary")
	bg.get("antiAffinity").drop("Sluice sets no anti-affinity between the copies; add it to the pod template")
	for _, k := range []string{"activeMetadata", "previewMetadata"} {
		bg.get(k).drop("Sluice adds no labels or annotations per copy; its own pod-template label tells the copies apart")
	}
	s.Strategy = v1alpha1.Strategy{BlueGreen: b}
	return true
}

// argoServices sets the port Sluice's Services expose, from the stable
// Service when it is among the inputs, else from the pod template.
func argoServices(cs node, s *v1alpha1.CanarySpec, in input, ns string, tmpl *corev1.PodTemplateSpec) {
	note := "Sluice makes its own Services <name>, <name>-primary and <name>-canary; yours are left unused once you switch (delete them after)"
	cs.get("canaryService").translate("Canary spec.service", note)
	cs.get("stableService").translate("Canary spec.service", note)
	argoServicePort(cs.get("stableService"), s, in, ns, tmpl)
}

// argoServicePort sets spec.service's port from the Service svc names when
// it is among the inputs, else from the pod template (80 without one).
func argoServicePort(svcNode node, s *v1alpha1.CanarySpec, in input, ns string, tmpl *corev1.PodTemplateSpec) {
	if svc := in.find("v1", "Service", ns, svcNode.str()); svc != nil {
		ports, _ := svc["spec"].(map[string]any)["ports"].([]any)
		if len(ports) > 0 {
			p, _ := ports[0].(map[string]any)
			port := node{v: p["port"], ok: true}
			if v, ok := port.int(); ok {
				s.Service.Port = int32(v)
			}
			if tp, ok := p["targetPort"]; ok {
				s.Service.TargetPort = fmt.Sprint(tp)
			}
			if n, ok := p["name"].(string); ok && len(n) <= 15 {
				s.Service.PortName = n
			}
			return
		}
	}
	if tmpl != nil {
		for _, c := range tmpl.Spec.Containers {
			if len(c.Ports) > 0 {
				s.Service.Port = c.Ports[0].ContainerPort
				return
			}
		}
	}
	s.Service.Port = 80
	svcNode.t.set(svcNode.path, mark{disp: NotCarried, note: "its port is not among the inputs (give the Service with -f): spec.service.port is 80, check it"})
}

// argoRouter sets the Canary's router from spec.strategy.canary
// .trafficRouting, and says whether Sluice has one for it.
func argoRouter(tr node, s *v1alpha1.CanarySpec, in input, ns, name string) bool {
	if !tr.ok {
		tr.t.set(tr.path, mark{disp: NotCarried, note: "no trafficRouting: Argo split by replica counts; Sluice splits traffic through a router, so no Canary was written: add spec.router by hand"})
		return false
	}
	tr.get("alb").drop("Sluice has no AWS ALB router; the AWS Gateway API controller with the gatewayAPI router is the nearest")
	tr.get("smi").drop("Sluice has no SMI router")
	tr.get("appMesh").drop("Sluice has no App Mesh router")
	tr.get("apisix").drop("Sluice has no APISIX router")
	tr.get("managedRoutes").translate("Canary spec.strategy.steps", "Sluice manages its header and mirror routes itself; no names needed")
	if m, ok := tr.get("maxTrafficWeight").int(); ok && m != 100 {
		tr.get("maxTrafficWeight").drop("Sluice's weights are percentages: each setWeight is carried as written, so w out of this total becomes w%; rescale the steps by hand")
	} else {
		tr.get("maxTrafficWeight").carry("Canary spec.strategy.steps[].setWeight")
	}
	found := false
	if t := tr.get("traefik"); t.ok {
		s.Router.Traefik = &v1alpha1.TraefikRouter{}
		t.get("weightedTraefikServiceName").translate("Canary spec.router.traefik", "Sluice owns a weighted TraefikService named after the Canary: point your IngressRoute at it instead of this one")
		found = true
	}
	if a := tr.get("ambassador"); a.ok && !found {
		s.Router.Ambassador = &v1alpha1.AmbassadorRouter{}
		for _, m := range a.get("mappings").items() {
			s.Router.Ambassador.Mappings = append(s.Router.Ambassador.Mappings, m.str())
		}
		a.get("mappings").carry("Canary spec.router.ambassador.mappings")
		found = true
	}
	const second = "a second router: Sluice routes through one"
	if i := tr.get("istio"); i.ok && found {
		i.drop(second)
	} else if i.ok {
		s.Router.Istio = argoIstio(i, in, ns, name)
		found = true
	}
	if n := tr.get("nginx"); n.ok && found {
		n.drop(second)
	} else if n.ok {
		s.Router.NGINX = argoNGINX(n)
		found = true
	}
	for _, k := range tr.get("plugins").keys() {
		p := tr.get("plugins").get(k)
		switch {
		case k == argoGatewayPlugin && !found:
			s.Router.GatewayAPI = argoGatewayRouter(p, in, ns)
			found = true
		case k == argoConsulPlugin && !found:
			s.Router.Consul = &v1alpha1.ConsulRouter{
				ServiceName:  p.get("serviceName").str(),
				StableSubset: p.get("stableSubsetName").str(),
				CanarySubset: p.get("canarySubsetName").str(),
			}
			p.translate("Canary spec.router.consul", "serviceName, stableSubsetName and canarySubsetName as the Consul router's; Sluice writes the ServiceResolver, ServiceSplitter and ServiceRouter itself")
			found = true
		default:
			p.drop("a traffic router plugin Sluice has no router for (or a second router: Sluice routes through one)")
		}
	}
	if !found {
		tr.t.set(tr.path, mark{disp: NotCarried, note: "no router Sluice has: no Canary was written"})
	}
	return found
}

// argoIstio converts trafficRouting.istio. Subset-level splitting (a
// DestinationRule) becomes Sluice's in-place shape: the same
// VirtualService routes and DestinationRule. Host-level splitting (the
// routes send to the stable and canary Services) becomes a VirtualService
// Sluice owns, with the hosts and gateways of yours when it is among the
// inputs.
func argoIstio(i node, in input, ns, canary string) *v1alpha1.IstioRouter {
	const to = "Canary spec.router.istio"
	vs := i.get("virtualService")
	if !vs.ok {
		if more := i.get("virtualServices").items(); len(more) > 0 {
			vs = more[0]
		}
	}
	for n, more := range i.get("virtualServices").items() {
		if n > 0 || vs.path != more.path {
			more.drop("Sluice splits the routes of one VirtualService; a further one is not carried (a Canary per VirtualService, or one VirtualService)")
		}
	}
	vsName := vs.get("name").str()
	vs.get("tlsRoutes").drop("Sluice splits HTTP routes only")
	vs.get("tcpRoutes").drop("Sluice splits HTTP routes only")
	dr := i.get("destinationRule")
	if !dr.ok {
		is := &v1alpha1.IstioRouter{}
		clash := ""
		if vsName == canary {
			clash = "; yours has the Canary's name and Sluice does not overwrite an object it does not own: rename the Canary in the output (metadata.name) before applying it"
		}
		if obj := in.find("networking.istio.io/", "VirtualService", ns, vsName); obj != nil {
			spec, _ := obj["spec"].(map[string]any)
			_ = fromJSON(spec["hosts"], &is.Hosts)
			_ = fromJSON(spec["gateways"], &is.Gateways)
			vs.translate(to, fmt.Sprintf("host-level splitting: Sluice owns a VirtualService named after the Canary, with the hosts and gateways of VirtualService %s; delete yours once Sluice's is written (both send to the stable revision until then)%s", vsName, clash))
		} else {
			vs.get("name").drop(fmt.Sprintf("host-level splitting: Sluice owns a VirtualService named after the Canary for the apex Service; VirtualService %s is not among the inputs, so its hosts and gateways are not carried (give it with -f, or set spec.router.istio.hosts and gateways)", vsName))
			vs.get("routes").drop("Sluice's own VirtualService has one route")
		}
		return is
	}
	is := &v1alpha1.IstioRouter{
		VirtualService:  &v1alpha1.IstioVirtualServiceRef{Name: vs.get("name").carry(to + ".virtualService.name").str()},
		DestinationRule: &v1alpha1.IstioDestinationRuleRef{Name: dr.get("name").carry(to + ".destinationRule.name").str()},
	}
	for _, r := range vs.get("routes").items() {
		is.VirtualService.Routes = append(is.VirtualService.Routes, r.str())
	}
	if len(is.VirtualService.Routes) > 0 {
		vs.get("routes").carry(to + ".virtualService.routes")
	} else if names := istioRouteNames(in.find("networking.istio.io/", "VirtualService", ns, vsName)); len(names) == 1 {
		is.VirtualService.Routes = names
		i.t.set(vs.path+".routes", mark{disp: Translated, to: to + ".virtualService.routes", note: "Argo splits the only HTTP route when none is named; Sluice names it: " + names[0]})
	} else {
		is.VirtualService.Routes = []string{"replace-me"}
		i.t.set(vs.path+".routes", mark{disp: NotCarried, note: fmt.Sprintf("Sluice needs the names of the HTTP routes to split, and VirtualService %s is not among the inputs with exactly one named HTTP route: the output names replace-me", vsName)})
	}
	for _, k := range []string{"stableSubsetName", "canarySubsetName"} {
		want := strings.TrimSuffix(k, "SubsetName")
		if v := dr.get(k); v.str() == want {
			v.carry(to + ".destinationRule")
		} else if v.ok {
			v.dropf("Sluice's subsets are named stable and canary: rename subset %s to %s in DestinationRule %s and in the routes of VirtualService %s", v.str(), want, is.DestinationRule.Name, vsName)
		}
	}
	dr.get("additionalSubsetNames").translate(to+".destinationRule", "Sluice changes only the stable and canary subsets; the others stay as you wrote them")
	return is
}

// istioRouteNames lists the names of a VirtualService's HTTP routes, or
// nothing when one is unnamed or the object is missing.
func istioRouteNames(vs map[string]any) []string {
	spec, _ := vs["spec"].(map[string]any)
	routes, _ := spec["http"].([]any)
	var out []string
	for _, r := range routes {
		m, _ := r.(map[string]any)
		n, _ := m["name"].(string)
		if n == "" {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// argoNGINX converts trafficRouting.nginx: Sluice adds a canary Ingress
// for the stable one, with ingress-nginx's canary annotations.
func argoNGINX(n node) *v1alpha1.NGINXRouter {
	const to = "Canary spec.router.nginx.ingress"
	ng := &v1alpha1.NGINXRouter{Ingress: n.get("stableIngress").carry(to).str()}
	for i, ing := range n.get("stableIngresses").items() {
		if ng.Ingress == "" && i == 0 {
			ng.Ingress = ing.carry(to).str()
			continue
		}
		ing.drop("Sluice adds a canary Ingress for one Ingress; a further one is not carried (a Canary per Ingress)")
	}
	if p := n.get("annotationPrefix"); p.ok && p.str() != "nginx.ingress.kubernetes.io" {
		p.drop("Sluice writes ingress-nginx's canary annotations under nginx.ingress.kubernetes.io only")
	} else {
		p.carry("Canary spec.router.nginx")
	}
	n.get("additionalIngressAnnotations").drop("Sluice writes the canary Ingress's annotations itself: for canary-by-header or canary-by-cookie, add a setHeaderRoute step (with a cookie) where the release should start routing by it")
	n.get("canaryIngressAnnotations").drop("Sluice's canary Ingress carries ingress-nginx's canary annotations only (ingress-nginx ignores most others on a canary Ingress)")
	return ng
}

// argoGatewayRouter converts the Gateway API plugin's config: Sluice
// writes its own HTTPRoute, attached where the plugin's route was (read
// from the inputs).
func argoGatewayRouter(p node, in input, ns string) *v1alpha1.GatewayAPIRouter {
	gw := &v1alpha1.GatewayAPIRouter{}
	route := p.get("httpRoute").str()
	if r := p.get("httpRoutes").items(); len(r) > 0 && route == "" {
		route = r[0].get("name").str()
	}
	if n := p.get("namespace").str(); n != "" {
		ns = n
	}
	if hr := in.find("gateway.networking.k8s.io/", "HTTPRoute", ns, route); hr != nil {
		spec, _ := hr["spec"].(map[string]any)
		_ = fromJSON(spec["parentRefs"], &gw.ParentRefs)
		_ = fromJSON(spec["hostnames"], &gw.Hostnames)
		if rules, _ := spec["rules"].([]any); len(rules) > 0 {
			r0, _ := rules[0].(map[string]any)
			_ = fromJSON(r0["matches"], &gw.Matches)
		}
		p.translate("Canary spec.router.gatewayAPI", fmt.Sprintf("Sluice writes its own HTTPRoute named after the Canary, with the parentRefs, hostnames and first rule's matches of HTTPRoute %s; delete yours once Sluice's carries the traffic", route))
	} else {
		gw.ParentRefs = []gwv1.ParentReference{{Name: "replace-me"}}
		p.translate("Canary spec.router.gatewayAPI", fmt.Sprintf("Sluice writes its own HTTPRoute; HTTPRoute %s is not among the inputs, so parentRefs name a Gateway replace-me: copy them from it", route))
	}
	return gw
}

// argoSteps converts the canary steps.
func argoSteps(steps node, s *v1alpha1.CanarySpec, an *v1alpha1.Analysis, in input, ns string) {
	const to = "Canary spec.strategy.steps[]"
	last := int32(-1)
	for _, st := range steps.items() {
		switch {
		case st.get("setWeight").ok:
			w, _ := st.get("setWeight").int()
			if int32(w) < last {
				st.get("setWeight").drop("a lower weight than the step before: Sluice's weights only increase")
				continue
			}
			last = int32(w)
			s.Strategy.Steps = append(s.Strategy.Steps, v1alpha1.Step{SetWeight: ptr(int32(w))})
			st.get("setWeight").carry(to + ".setWeight")
		case st.get("pause").ok:
			p := &v1alpha1.PauseStep{}
			if d := st.get("pause").get("duration"); d.ok {
				p.Duration, _ = duration(d)
				d.translate(to+".pause.duration", "a number of seconds or a duration, written as a duration")
			} else {
				st.get("pause").carry(to + ".pause")
			}
			s.Strategy.Steps = append(s.Strategy.Steps, v1alpha1.Step{Pause: p})
		case st.get("setHeaderRoute").ok:
			h := st.get("setHeaderRoute")
			h.get("name").translate(to+".setHeaderRoute", "Sluice's header route needs no name")
			hr := &v1alpha1.HeaderRoute{}
			for _, m := range h.get("match").items() {
				name := m.get("headerName").carry(to + ".setHeaderRoute.match[].name").str()
				hm, _ := headerMatch(name, m.get("headerValue"), to+".setHeaderRoute.match[]")
				hr.Match = append(hr.Match, hm)
			}
			if len(hr.Match) == 0 {
				h.drop("a setHeaderRoute without matches removes the route: Sluice keeps a header route until the release ends")
				continue
			}
			s.Strategy.Steps = append(s.Strategy.Steps, v1alpha1.Step{SetHeaderRoute: hr})
		case st.get("setMirrorRoute").ok:
			m := st.get("setMirrorRoute")
			m.get("name").translate(to+".setMirror", "Sluice's mirror needs no name")
			pct := int32(100)
			if p, ok := m.get("percentage").int(); ok {
				pct = int32(p)
				m.get("percentage").carry(to + ".setMirror.percent")
			}
			if !m.get("match").ok {
				pct = 0
				m.translate(to+".setMirror", "a setMirrorRoute without matches removes the mirror: setMirror percent 0")
			}
			m.get("match").translate(to+".setMirror", "Sluice mirrors a share of every request the route carries; the method, path and header matches that narrowed Argo's mirror are not carried")
			s.Strategy.Steps = append(s.Strategy.Steps, v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: pct}})
		case st.get("analysis").ok:
			argoAnalysisRef(st.get("analysis"), an, in, ns, "Canary spec.analysis")
			st.get("analysis").get("templates").translate("Canary spec.analysis.metrics", "an inline analysis step: its checks join the Canary's, which run in every round of every step (a step is left only after a round started in it passed)")
		case st.get("setCanaryScale").ok:
			st.get("setCanaryScale").drop("Sluice runs the canary at the Deployment's replicas; scale the Deployment instead")
		case st.get("experiment").ok:
			st.get("experiment").drop("Sluice has no experiments")
		case st.get("plugin").ok:
			st.get("plugin").drop("Sluice has no step plugins")
		}
	}
	steps.carry("Canary spec.strategy.steps")
	if len(s.Strategy.Steps) == 0 {
		s.Strategy.Steps = []v1alpha1.Step{{Pause: &v1alpha1.PauseStep{}}}
		steps.t.set(steps.path, mark{disp: Translated, to: "Canary spec.strategy.steps", note: "no steps Sluice can run: one pause without a duration (promote by hand)"})
	}
}

// argoAnalysisRef adds the checks of the templates an analysis (step or
// background) names.
func argoAnalysisRef(a node, an *v1alpha1.Analysis, in input, ns, to string) {
	vars := map[string]string{}
	for _, arg := range a.get("args").items() {
		if v := arg.get("value"); v.ok {
			vars[arg.get("name").carry(to+".metrics[].templateVariables").str()] = v.carry(to + ".metrics[].templateVariables").str()
			arg.get("valueFrom").drop("value is given and used: Sluice's template variables are values")
		} else {
			arg.drop("an argument from a field or the pod template hash: Sluice's template variables are values; {{ target }} and {{ namespace }} cover the common uses")
		}
	}
	a.get("analysisRunMetadata").drop("Sluice keeps no AnalysisRuns")
	a.get("dryRun").drop("Sluice has no dry-run metrics; every check counts")
	a.get("measurementRetention").drop("Sluice keeps the last round's results in status.metrics")
	for _, ref := range a.get("templates").items() {
		kind := "AnalysisTemplate"
		if ref.get("clusterScope").bool() {
			kind = "ClusterAnalysisTemplate"
		}
		ref.get("clusterScope").carry(to + ".metrics[].templateRef")
		tn := ref.get("templateName").str()
		tmpl := in.find(argoGroup, kind, ns, tn)
		if tmpl == nil {
			ref.dropf("%s %s is not among the inputs: give it with -f", kind, tn)
			continue
		}
		ref.get("templateName").translate(to+".metrics", "a metric check against the MetricTemplate <template>-<metric> per metric of the template whose provider Sluice has; a rollout webhook per web metric that judges no single number")
		for _, m := range argoMetrics(tn, tmpl, in) {
			if m.check != nil && !hasMetric(an, m.check.Name) {
				mc := *m.check
				if len(vars) > 0 {
					mc.TemplateVariables = vars
				}
				an.Metrics = append(an.Metrics, mc)
			}
			if m.hook != nil && !hasMetric(an, m.hook.Name) {
				h := *m.hook
				for k, v := range vars {
					// A web metric's URL takes the analysis' arguments.
					h.URL = strings.ReplaceAll(h.URL, "{{args."+k+"}}", v)
				}
				an.Webhooks = append(an.Webhooks, h)
			}
			if m.threshold > 0 && (an.Threshold == nil || m.threshold < *an.Threshold) {
				an.Threshold = ptr(m.threshold)
			}
			if m.interval != nil && an.Interval == nil {
				an.Interval = m.interval
			}
		}
	}
}

func hasMetric(an *v1alpha1.Analysis, name string) bool {
	for _, m := range an.Metrics {
		if m.Name == name {
			return true
		}
	}
	for _, w := range an.Webhooks {
		if w.Name == name {
			return true
		}
	}
	return false
}

// argoMetricTemplates are the MetricTemplates the Canary's checks
// reference, made from the AnalysisTemplates among the inputs.
func argoMetricTemplates(c *v1alpha1.Canary, in input, ns string) []Output {
	if c.Spec.Analysis == nil {
		return nil
	}
	var outs []Output
	seen := map[string]bool{}
	for _, o := range in.objs {
		if av, _ := o["apiVersion"].(string); av != argoGroup || (o["kind"] != "AnalysisTemplate" && o["kind"] != "ClusterAnalysisTemplate") {
			continue
		}
		tn, _ := nameOf(o)
		for _, m := range argoMetrics(tn, o, in) {
			if m.template == nil || seen[m.template.Name] {
				continue
			}
			for _, mc := range c.Spec.Analysis.Metrics {
				if mc.TemplateRef != nil && mc.TemplateRef.Name == m.template.Name {
					m.template.Namespace = ns
					seen[m.template.Name] = true
					outs = append(outs, Output{Object: m.template})
					break
				}
			}
		}
	}
	return outs
}
