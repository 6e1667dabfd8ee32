package convert

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Flagger's defaults that differ from Sluice's or that Sluice lacks.
const (
	flaggerMaxWeight         = 100
	flaggerInterval          = time.Minute
	flaggerMinInterval       = 10 * time.Second
	flaggerAnalysisThreshold = 1
)

// flaggerRouter is how a Flagger provider maps onto a Sluice router:
// "gatewayapi", "traefik", "istio", "nginx", or "" when Sluice has none.
func flaggerRouter(provider string) string {
	p, _, _ := strings.Cut(provider, ":")
	switch p {
	case "gatewayapi", "traefik", "istio", "nginx":
		return p
	}
	return ""
}

// flaggerProviderHint is what to use instead of a Flagger provider Sluice
// does not have.
func flaggerProviderHint(provider string) string {
	p, _, _ := strings.Cut(provider, ":")
	switch p {
	case "linkerd", "osm", "kuma", "smi", "appmesh":
		return "Sluice has no " + p + " router; an Envoy-based Gateway API implementation or the Consul router are the nearest (set spec.router by hand)"
	case "contour", "gloo", "skipper", "apisix":
		return "Sluice has no " + p + " router; the gatewayAPI, traefik and ambassador routers are the nearest (set spec.router by hand)"
	case "kubernetes":
		return "Sluice has no blue/green without a traffic router; set spec.router by hand"
	case "":
		return "no provider: Flagger used its -mesh-provider flag; pass --flagger-provider"
	}
	return "Sluice has no " + p + " router; set spec.router by hand"
}

func flaggerCanary(t *tracker, in input, opts Options) []Output {
	spec := t.at("spec")
	name, _ := nameOf(t.root)
	if k := spec.get("targetRef").get("kind"); k.str() != "Deployment" {
		spec.dropf("Sluice releases Deployments only, not a %s: this Canary was not converted", k.str())
		return nil
	}
	c := &v1alpha1.Canary{ObjectMeta: objectMeta(t, name)}
	c.APIVersion, c.Kind = v1alpha1.GroupVersion.String(), "Canary"
	s := &c.Spec

	tr := spec.get("targetRef")
	tr.get("apiVersion").carry("Canary spec.targetRef.apiVersion")
	tr.get("kind").carry("Canary spec.targetRef.kind")
	s.TargetRef.Name = tr.get("name").carry("Canary spec.targetRef.name").str()
	s.TargetRef.APIVersion, s.TargetRef.Kind = "apps/v1", "Deployment"

	if d := seconds(spec.get("progressDeadlineSeconds")); d != nil {
		s.ProgressDeadline = d
		spec.get("progressDeadlineSeconds").translate("Canary spec.progressDeadline", "seconds written as a duration; Sluice does not count pauses toward it")
	}
	if spec.get("suspend").bool() {
		s.Suspend = true
	}
	spec.get("suspend").carry("Canary spec.suspend")
	if rod := spec.get("revertOnDeletion"); rod.bool() {
		s.HandBackOnDeletion = v1alpha1.HandBackTarget
		rod.translate("Canary spec.handBackOnDeletion", "true is Target: your Deployment gets the traffic back once its pods are available")
	} else {
		rod.translate("Canary spec.handBackOnDeletion", "false is LastGood (the default): on deletion the primary copy keeps serving unless your Deployment runs the last good revision")
	}
	if spec.get("skipAnalysis").bool() {
		spec.get("skipAnalysis").drop("Sluice always walks the steps; to skip them for one release use `kubectl sluice promote --full`")
	} else {
		spec.get("skipAnalysis").carry("Canary spec")
	}
	spec.get("metricsServer").drop("Sluice reads builtin metrics from the controller's --metrics-server flag; set it there")
	flaggerAutoscaler(spec.get("autoscalerRef"), s)
	spec.get("routeRef").drop("an APISIX route: Sluice has no APISIX router")
	spec.get("upstreamRef").drop("a Gloo Upstream: Sluice has no Gloo router")

	provider := spec.get("provider").str()
	if !spec.get("provider").ok {
		provider = opts.FlaggerProvider
	}
	router := flaggerRouter(provider)
	switch {
	case router == "":
		spec.get("provider").drop(flaggerProviderHint(provider))
		if !spec.get("provider").ok {
			t.set("spec.provider", mark{disp: NotCarried, note: flaggerProviderHint(provider)})
		}
	case router == "gatewayapi":
		s.Router.GatewayAPI = &v1alpha1.GatewayAPIRouter{}
		spec.get("provider").translate("Canary spec.router.gatewayAPI", "Sluice owns an HTTPRoute named after the Canary, as Flagger did")
	case router == "traefik":
		s.Router.Traefik = &v1alpha1.TraefikRouter{}
		spec.get("provider").translate("Canary spec.router.traefik", "Sluice owns a weighted TraefikService named after the Canary (Flagger's was named after the apex Service): point your IngressRoute at it")
	case router == "istio":
		s.Router.Istio = &v1alpha1.IstioRouter{}
		spec.get("provider").translate("Canary spec.router.istio", "Sluice owns a VirtualService named after the Canary (Flagger's was named after the apex Service) and, with a trafficPolicy, the DestinationRules <name>-primary and <name>-canary, as Flagger did")
	case router == "nginx":
		s.Router.NGINX = &v1alpha1.NGINXRouter{}
		spec.get("provider").translate("Canary spec.router.nginx", "Sluice writes the canary Ingress <ingress>-canary with ingress-nginx's canary annotations, as Flagger did")
	}
	flaggerIngressRef(spec.get("ingressRef"), s.Router.NGINX)

	flaggerService(spec.get("service"), s, router)
	flaggerAnalysis(spec.get("analysis"), s, router, in, name)
	if router == "" {
		return nil
	}
	outs := []Output{{Object: c}}
	if opts.Handover {
		outs = append(outs, flaggerHandover(c)...)
	}
	return outs
}

// flaggerService converts spec.service: the ports Sluice's Services
// expose, and with the Gateway API the route's matches, hosts, filters
// and timeout.
func flaggerService(sv node, s *v1alpha1.CanarySpec, router string) {
	if n := sv.get("name"); n.ok {
		s.Service.Name = n.carry("Canary spec.service.name").str()
	}
	if p, ok := sv.get("port").carry("Canary spec.service.port").int(); ok {
		s.Service.Port = int32(p)
	}
	if n := sv.get("portName"); n.ok {
		s.Service.PortName = n.carry("Canary spec.service.portName").str()
	}
	if n := sv.get("targetPort"); n.ok {
		s.Service.TargetPort = n.carry("Canary spec.service.targetPort").str()
	}
	sv.get("appProtocol").drop("Sluice's Services set no appProtocol; add it to the Services after the first release, or ask for it")
	sv.get("portDiscovery").drop("Sluice's Services expose spec.service.port only")
	sv.get("headless").drop("Sluice makes no headless Services")
	sv.get("meshName").drop("App Mesh: Sluice has no App Mesh router")
	sv.get("backends").drop("App Mesh: Sluice has no App Mesh router")
	sv.get("delegation").drop("Istio delegation: Sluice's istio router does not follow delegate VirtualServices")
	sv.get("corsPolicy").drop("Istio CORS: Sluice's routes set no CORS policy")
	if is := s.Router.Istio; is != nil {
		flaggerIstio(sv, is, s.GetServiceName())
	} else {
		for _, k := range []string{"gateways", "retries", "trafficPolicy"} {
			sv.get(k).dropf("used with the Istio provider only; the %s router has no such setting", routerName(router))
		}
	}
	for _, k := range []string{"apex", "primary", "canary"} {
		sv.get(k).dropf("Sluice sets its own labels and annotations on the %s Service; yours are not added", k)
	}
	gw := s.Router.GatewayAPI
	if gw == nil {
		for _, k := range []string{"timeout", "hosts", "match", "rewrite", "mirror", "headers", "gatewayRefs"} {
			if s.Router.Istio != nil && (k == "timeout" || k == "hosts") {
				continue
			}
			sv.get(k).dropf("used with the Gateway API provider only; the %s router has no such setting", routerName(router))
		}
		return
	}
	if d, ok := duration(sv.get("timeout")); ok {
		gw.Timeouts = &gwv1.HTTPRouteTimeouts{Request: ptr(gwv1.Duration(d.Duration.String()))}
		sv.get("timeout").translate("Canary spec.router.gatewayAPI.timeouts.request", "the route rule's request timeout")
	}
	for _, h := range sv.get("hosts").items() {
		gw.Hostnames = append(gw.Hostnames, gwv1.Hostname(h.str()))
	}
	sv.get("hosts").carry("Canary spec.router.gatewayAPI.hostnames")
	for _, r := range sv.get("gatewayRefs").items() {
		var pr gwv1.ParentReference
		if err := fromJSON(r.v, &pr); err != nil {
			r.dropf("not a Gateway API parentRef: %v", err)
			continue
		}
		gw.ParentRefs = append(gw.ParentRefs, pr)
		r.carry("Canary spec.router.gatewayAPI.parentRefs")
	}
	for _, m := range sv.get("match").items() {
		if hm, ok := flaggerRouteMatch(m); ok {
			gw.Matches = append(gw.Matches, hm)
		}
	}
	if rw := sv.get("rewrite"); rw.ok {
		f := map[string]any{}
		if u := rw.get("uri"); u.ok {
			typ := "ReplacePrefixMatch"
			if rw.get("type").str() == "ReplaceFullPath" {
				typ = "ReplaceFullPath"
			}
			key := map[string]string{"ReplacePrefixMatch": "replacePrefixMatch", "ReplaceFullPath": "replaceFullPath"}[typ]
			if typ == "ReplacePrefixMatch" && !onePrefixMatch(gw.Matches) {
				// The Gateway API rejects the route otherwise, and
				// Sluice's route is one rule holding every match.
				const why = "a replacePrefixMatch rewrite needs a route rule with exactly one PathPrefix match, and Sluice's route has one rule with all of spec.service.match: not written (use one prefix match, or ReplaceFullPath)"
				u.drop(why)
				rw.get("type").drop(why)
			} else {
				f["path"] = map[string]any{"type": typ, key: u.str()}
				u.translate("Canary spec.router.gatewayAPI.filters[URLRewrite].path", "a URLRewrite filter")
				rw.get("type").translate("Canary spec.router.gatewayAPI.filters[URLRewrite].path.type", "the path modifier's type")
			}
		}
		if a := rw.get("authority"); a.ok {
			f["hostname"] = a.translate("Canary spec.router.gatewayAPI.filters[URLRewrite].hostname", "a URLRewrite filter").str()
		}
		var flt gwv1.HTTPRouteFilter
		if err := fromJSON(map[string]any{"type": "URLRewrite", "urlRewrite": f}, &flt); err == nil {
			gw.Filters = append(gw.Filters, flt)
		}
	}
	for _, dir := range []string{"request", "response"} {
		h := sv.get("headers").get(dir)
		if !h.ok {
			continue
		}
		f := map[string]any{}
		for _, op := range []string{"add", "set"} {
			var hs []map[string]any
			for _, k := range h.get(op).keys() {
				hs = append(hs, map[string]any{"name": k, "value": h.get(op).get(k).str()})
			}
			if len(hs) > 0 {
				f[op] = hs
			}
		}
		if rm := h.get("remove"); rm.ok {
			var names []string
			for _, x := range rm.items() {
				names = append(names, x.str())
			}
			f["remove"] = names
		}
		typ, key := "RequestHeaderModifier", "requestHeaderModifier"
		if dir == "response" {
			typ, key = "ResponseHeaderModifier", "responseHeaderModifier"
		}
		var flt gwv1.HTTPRouteFilter
		if err := fromJSON(map[string]any{"type": typ, key: f}, &flt); err == nil {
			gw.Filters = append(gw.Filters, flt)
			h.translate("Canary spec.router.gatewayAPI.filters["+typ+"]", "a "+typ+" filter on the route")
		}
	}
	for _, m := range sv.get("mirror").items() {
		var flt gwv1.HTTPRouteFilter
		if err := fromJSON(map[string]any{"type": "RequestMirror", "requestMirror": map[string]any{"backendRef": m.get("backendRef").v}}, &flt); err != nil {
			m.dropf("not a Gateway API backendRef: %v", err)
			continue
		}
		gw.Filters = append(gw.Filters, flt)
		m.translate("Canary spec.router.gatewayAPI.filters[RequestMirror]", "a RequestMirror filter on the route, as Flagger wrote it")
	}
	if len(gw.ParentRefs) == 0 {
		gw.ParentRefs = []gwv1.ParentReference{{Name: "replace-me"}}
		sv.get("gatewayRefs").drop("missing: Sluice's route needs spec.router.gatewayAPI.parentRefs; the output names a Gateway replace-me")
		if !sv.get("gatewayRefs").ok {
			sv.t.set(sv.path+".gatewayRefs", mark{disp: NotCarried, note: "missing: Sluice's route needs spec.router.gatewayAPI.parentRefs; the output names a Gateway replace-me"})
		}
	}
}

// flaggerIstio converts the Istio settings of spec.service into those of
// the VirtualService (and DestinationRules) Sluice owns.
func flaggerIstio(sv node, is *v1alpha1.IstioRouter, apex string) {
	const to = "Canary spec.router.istio"
	apexListed := false
	for _, h := range sv.get("hosts").items() {
		is.Hosts = append(is.Hosts, h.str())
		apexListed = apexListed || h.str() == apex || h.str() == "*"
	}
	if len(is.Hosts) > 0 {
		if !apexListed {
			// Flagger always adds the apex Service's name to the hosts, so
			// the mesh's own traffic is split too; Sluice adds it only when
			// no hosts are given.
			is.Hosts = append(is.Hosts, apex)
			sv.get("hosts").translate(to+".hosts", "the apex Service "+apex+" added, as Flagger adds it")
		} else {
			sv.get("hosts").carry(to + ".hosts")
		}
	}
	for _, g := range sv.get("gateways").items() {
		is.Gateways = append(is.Gateways, g.str())
	}
	sv.get("gateways").carry(to + ".gateways")
	if d, ok := duration(sv.get("timeout")); ok {
		is.Timeout = d
		sv.get("timeout").carry(to + ".timeout")
	}
	if r := sv.get("retries"); r.ok {
		rt := &v1alpha1.IstioRetries{}
		if n, ok := r.get("attempts").carry(to + ".retries.attempts").int(); ok {
			rt.Attempts = int32(n)
		}
		if d, ok := duration(r.get("perTryTimeout")); ok {
			rt.PerTryTimeout = d
			r.get("perTryTimeout").carry(to + ".retries.perTryTimeout")
		}
		if v := r.get("retryOn"); v.ok {
			rt.RetryOn = v.carry(to + ".retries.retryOn").str()
		}
		is.Retries = rt
	}
	if tp := sv.get("trafficPolicy"); tp.ok {
		if raw, err := json.Marshal(tp.v); err == nil {
			is.TrafficPolicy = &runtime.RawExtension{Raw: raw}
			tp.carry(to + ".trafficPolicy")
		}
	}
	for _, k := range []string{"match", "rewrite", "headers"} {
		sv.get(k).dropf("Sluice's VirtualService has one route for every request to its hosts; it sets no %s (ask for it)", k)
	}
	sv.get("mirror").drop("used with the Gateway API provider only; a setMirror step mirrors with Istio")
	sv.get("gatewayRefs").drop("used with the Gateway API provider only; Istio gateways are spec.service.gateways")
}

// flaggerIngressRef converts spec.ingressRef: the Ingress Sluice's nginx
// router adds a canary Ingress for. With another provider it is unused.
func flaggerIngressRef(ref node, ng *v1alpha1.NGINXRouter) {
	if ng == nil {
		ref.drop("used with the nginx provider only")
		return
	}
	ref.get("apiVersion").translate("Canary spec.router.nginx", "Sluice reads networking.k8s.io/v1 Ingresses")
	ref.get("kind").carry("Canary spec.router.nginx")
	ng.Ingress = ref.get("name").carry("Canary spec.router.nginx.ingress").str()
	if ng.Ingress == "" {
		ng.Ingress = "replace-me"
		ref.t.set(ref.path, mark{disp: NotCarried, note: "missing: Sluice's nginx router needs your Ingress (spec.router.nginx.ingress); the output names replace-me"})
	}
}

// onePrefixMatch says whether a route rule with these matches may
// rewrite with replacePrefixMatch: exactly one match, by PathPrefix (no
// matches is the default one, PathPrefix /).
func onePrefixMatch(ms []gwv1.HTTPRouteMatch) bool {
	if len(ms) == 0 {
		return true
	}
	return len(ms) == 1 && (ms[0].Path == nil || ms[0].Path.Type == nil || *ms[0].Path.Type == gwv1.PathMatchPathPrefix)
}

func routerName(r string) string {
	if r == "" {
		return "chosen"
	}
	return r
}

// flaggerRouteMatch converts one Istio-style match of spec.service.match
// into a Gateway API match: uri, headers, queryParams and method.
func flaggerRouteMatch(m node) (gwv1.HTTPRouteMatch, bool) {
	const to = "Canary spec.router.gatewayAPI.matches"
	out := map[string]any{}
	if u := m.get("uri"); u.ok {
		for _, k := range []string{"exact", "prefix", "regex"} {
			if v := u.get(k); v.ok {
				typ := map[string]string{"exact": "Exact", "prefix": "PathPrefix", "regex": "RegularExpression"}[k]
				out["path"] = map[string]any{"type": typ, "value": v.str()}
				v.carry(to + "[].path")
			}
		}
	}
	for _, f := range []string{"headers", "queryParams"} {
		var ms []map[string]any
		for _, k := range m.get(f).keys() {
			h := m.get(f).get(k)
			switch {
			case h.get("exact").ok:
				ms = append(ms, map[string]any{"name": k, "value": h.get("exact").carry(to + "[]." + f).str()})
			case h.get("regex").ok:
				ms = append(ms, map[string]any{"name": k, "type": "RegularExpression", "value": h.get("regex").carry(to + "[]." + f).str()})
			case h.get("prefix").ok:
				ms = append(ms, map[string]any{"name": k, "type": "RegularExpression", "value": regexp.QuoteMeta(h.get("prefix").str()) + ".*"})
				h.get("prefix").translate(to+"[]."+f, "a prefix written as a regular expression")
			}
		}
		if len(ms) > 0 {
			out[f] = ms
		}
	}
	if v := m.get("method").get("exact"); v.ok {
		out["method"] = v.carry(to + "[].method").str()
	}
	m.get("method").get("prefix").drop("Gateway API matches methods exactly")
	m.get("method").get("regex").drop("Gateway API matches methods exactly")
	for _, k := range []string{"authority", "gateways", "ignoreUriCase", "name", "port", "scheme", "sourceLabels", "sourceNamespace", "withoutHeaders"} {
		m.get(k).dropf("an Istio match field (%s) the Gateway API has no match for", k)
	}
	var hm gwv1.HTTPRouteMatch
	if len(out) == 0 || fromJSON(out, &hm) != nil {
		return hm, false
	}
	return hm, true
}

// flaggerWeights is the sequence of canary weights Flagger walks: with
// stepWeight, stepWeight more each interval while below maxWeight
// (default 100; the last step may overshoot it, capped at 100); with
// stepWeights, the list (maxWeight ignored).
func flaggerWeights(stepWeight int32, stepWeights []int32, maxWeight int32) []int32 {
	var out []int32
	if len(stepWeights) > 0 {
		max := min(stepWeights[len(stepWeights)-1], 100)
		for _, w := range stepWeights {
			out = append(out, min(w, 100))
			if w >= max {
				break
			}
		}
		return out
	}
	if stepWeight <= 0 {
		return nil
	}
	if maxWeight <= 0 {
		maxWeight = flaggerMaxWeight
	}
	for w := int32(0); w < maxWeight; {
		w = min(w+stepWeight, 100)
		out = append(out, w)
	}
	return out
}

// sluiceWeights is the sequence Sluice's stepWeight shorthand expands to.
func sluiceWeights(stepWeight, maxWeight int32) []int32 {
	var out []int32
	for w := stepWeight; w <= maxWeight; w += stepWeight {
		out = append(out, w)
	}
	return out
}

// flaggerAnalysis converts spec.analysis: the strategy (weights, A/B
// iterations, mirroring) and the checks.
func flaggerAnalysis(a node, s *v1alpha1.CanarySpec, router string, in input, name string) {
	interval := flaggerInterval
	if d, ok := duration(a.get("interval")); ok {
		interval = max(d.Duration, flaggerMinInterval)
	}
	iv := &metav1.Duration{Duration: interval}
	an := &v1alpha1.Analysis{Interval: iv, Threshold: ptr(int32(flaggerAnalysisThreshold))}
	a.get("interval").translate("Canary spec.analysis.interval, spec.strategy.interval", "the time between check rounds and how long each weight is held (Flagger's floor of 10s applied)")
	if th, ok := a.get("threshold").carry("Canary spec.analysis.threshold").int(); ok && th > 0 {
		an.Threshold = ptr(int32(th))
	}
	if !a.get("threshold").ok {
		a.t.set(a.path+".threshold", mark{disp: Translated, to: "Canary spec.analysis.threshold", note: "Flagger's default 1 written out (Sluice's is 5)"})
	}
	if p, ok := a.get("primaryReadyThreshold").carry("Canary spec.primaryReadyThreshold").int(); ok {
		s.PrimaryReadyThreshold = ptr(int32(p))
	}
	if p, ok := a.get("canaryReadyThreshold").carry("Canary spec.canaryReadyThreshold").int(); ok {
		s.CanaryReadyThreshold = ptr(int32(p))
	}
	a.get("stepWeightPromotion").drop("Sluice promotes in one step: the primary is updated, then gets all the traffic back once ready")
	flaggerSessionAffinity(a.get("sessionAffinity"), s, router)

	flaggerStrategy(a, s, iv, router)

	for _, m := range a.get("metrics").items() {
		if mc, ok := flaggerMetric(m); ok {
			an.Metrics = append(an.Metrics, mc)
		}
	}
	for _, w := range a.get("webhooks").items() {
		an.Webhooks = append(an.Webhooks, flaggerWebhook(w))
	}
	flaggerAlerts(a.get("alerts"), an)
	s.Analysis = an
}

// flaggerAutoscaler converts spec.autoscalerRef: the same reference, the
// primary's copy made by Sluice as by Flagger.
func flaggerAutoscaler(ar node, s *v1alpha1.CanarySpec) {
	if !ar.ok {
		return
	}
	const to = "Canary spec.autoscalerRef"
	ref := &v1alpha1.AutoscalerRef{Kind: ar.get("kind").str(), Name: ar.get("name").carry(to + ".name").str()}
	switch ref.Kind {
	case "HorizontalPodAutoscaler":
		ref.APIVersion = "autoscaling/v2"
		if ar.get("apiVersion").str() == ref.APIVersion {
			ar.get("apiVersion").carry(to + ".apiVersion")
		} else {
			ar.get("apiVersion").translate(to+".apiVersion", "autoscaling/v2, the version Sluice reads (the same HPA, served in every version)")
		}
		ar.get("primaryScalerQueries").drop("it rewrites KEDA triggers; a HorizontalPodAutoscaler's copy keeps its metrics")
	case "ScaledObject":
		ref.APIVersion = "keda.sh/v1alpha1"
		ar.get("apiVersion").carry(to + ".apiVersion")
		ref.PrimaryScalerQueries = ar.get("primaryScalerQueries").carry(to + ".primaryScalerQueries").stringMap()
	default:
		ar.dropf("Sluice copies a HorizontalPodAutoscaler or a KEDA ScaledObject, not a %s", ref.Kind)
		return
	}
	ar.get("kind").carry(to + ".kind")
	ar.get("primaryScalerReplicas").drop("Sluice's copy has your autoscaler's own bounds: set them on yours")
	s.AutoscalerRef = ref
}

// flaggerSessionAffinity converts spec.analysis.sessionAffinity: the
// cookie that keeps a client the canary answered on it.
func flaggerSessionAffinity(sa node, s *v1alpha1.CanarySpec, router string) {
	if !sa.ok {
		return
	}
	if router == "nginx" {
		sa.drop("ingress-nginx's canary annotations keep no client on the canary: Sluice's nginx router refuses sessionAffinity")
		return
	}
	const to = "Canary spec.strategy.sessionAffinity"
	aff := &v1alpha1.SessionAffinity{CookieName: sa.get("cookieName").carry(to + ".cookieName").str()}
	if n, ok := sa.get("maxAge").int(); ok && n > 0 {
		aff.MaxAge = &metav1.Duration{Duration: time.Duration(n) * time.Second}
		sa.get("maxAge").translate(to+".maxAge", "seconds written as a duration")
	} else {
		aff.MaxAge = &metav1.Duration{Duration: 24 * time.Hour}
		sa.t.set(sa.path+".maxAge", mark{disp: Translated, to: to + ".maxAge", note: "Flagger's default of a day written out"})
	}
	sa.get("primaryCookieName").drop("Sluice keeps clients on the canary only: a client the primary answered is split by the weight again on its next request")
	s.Strategy.SessionAffinity = aff
}

func flaggerStrategy(a node, s *v1alpha1.CanarySpec, iv *metav1.Duration, router string) {
	st := &s.Strategy
	sw, _ := a.get("stepWeight").int()
	var sws []int32
	for _, w := range a.get("stepWeights").items() {
		v, _ := w.int()
		sws = append(sws, int32(v))
	}
	mw, hasMax := a.get("maxWeight").int()
	iterations, _ := a.get("iterations").int()
	mirror := a.get("mirror").bool()
	mirrorPercent := int32(100)
	if p, ok := a.get("mirrorWeight").int(); ok && p > 0 {
		mirrorPercent = int32(p)
	}
	headerRoute := flaggerHeaderRoute(a.get("match"), router)
	if mirror && router == "nginx" {
		mirror = false
		defer func() { // after the marks below, which treat mirroring as off
			a.get("mirror").drop("ingress-nginx's canary annotations cannot mirror a share of requests: no mirror steps are written")
			a.get("mirrorWeight").drop("ingress-nginx cannot mirror")
		}()
	}

	if (iterations > 0 || (sw == 0 && len(sws) == 0)) && headerRoute == nil && !mirror {
		// Blue/green: checks run `iterations` intervals against the
		// canary with no production traffic, then all of it switches.
		n := max(iterations, 1)
		st.BlueGreen = &v1alpha1.BlueGreen{AutoPromotionSeconds: ptr(int32(time.Duration(n) * iv.Duration / time.Second)),
			ScaleDownDelay: &metav1.Duration{}}
		a.get("iterations").translate("Canary spec.strategy.blueGreen.autoPromotionSeconds", "a preview of iterations × interval, checked every interval, then all traffic at once; scaleDownDelay 0s, as Flagger scales the canary down at once")
		a.get("mirror").carry("Canary spec.strategy.blueGreen")
		a.get("mirrorWeight").drop("mirror is off, so it had no effect")
		if st.SessionAffinity != nil {
			st.SessionAffinity = nil
			a.get("sessionAffinity").drop("a blue/green release moves all traffic at once: there is no share to keep a client on")
		}
		for _, k := range []string{"stepWeight", "stepWeights", "maxWeight"} {
			a.get(k).drop("Flagger ignores it with iterations")
		}
		return
	}
	if iterations > 0 || (sw == 0 && len(sws) == 0) {
		// A/B testing (match) or mirroring: the canary gets no weighted
		// traffic; checks run `iterations` intervals, then promotion.
		n := max(iterations, 1)
		a.get("iterations").translate("Canary spec.strategy.steps[pause]", "one pause of iterations × interval, checked every interval; the canary gets no weighted traffic")
		if headerRoute != nil {
			st.Steps = append(st.Steps, v1alpha1.Step{SetHeaderRoute: headerRoute})
		}
		if mirror {
			st.Steps = append(st.Steps, v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: mirrorPercent}})
			a.get("mirror").translate("Canary spec.strategy.steps[setMirror]", "a setMirror step before the pause")
			a.get("mirrorWeight").carry("Canary spec.strategy.steps[setMirror].percent")
		} else {
			a.get("mirror").carry("Canary spec.strategy.steps")
			a.get("mirrorWeight").drop("mirror is off, so it had no effect")
		}
		st.Steps = append(st.Steps, v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: time.Duration(n) * iv.Duration}}})
		for _, k := range []string{"stepWeight", "stepWeights", "maxWeight"} {
			a.get(k).drop("Flagger ignores it with iterations")
		}
		return
	}
	a.get("iterations").carry("Canary spec.strategy")
	if headerRoute != nil {
		a.get("match").drop("Flagger ignores match without iterations")
	}
	weights := flaggerWeights(int32(sw), sws, int32(mw))
	if mirror {
		// One interval of mirroring at weight 0, then the weights.
		st.Steps = append(st.Steps,
			v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: mirrorPercent}},
			v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: iv}},
			v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: 0}})
		for _, w := range weights {
			st.Steps = append(st.Steps, v1alpha1.Step{SetWeight: ptr(w)}, v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: iv}})
		}
		a.get("mirror").translate("Canary spec.strategy.steps", "one interval mirrored at weight 0 (setMirror, pause, setMirror 0), then the weights as setWeight/pause steps")
		a.get("mirrorWeight").carry("Canary spec.strategy.steps[setMirror].percent")
		a.get("stepWeight").translate("Canary spec.strategy.steps", fmt.Sprintf("the weights Flagger walks: %v", weights))
		a.get("stepWeights").translate("Canary spec.strategy.steps", fmt.Sprintf("the weights Flagger walks: %v", weights))
		a.get("maxWeight").translate("Canary spec.strategy.steps", "the last weight")
		return
	}
	a.get("mirror").carry("Canary spec.strategy")
	a.get("mirrorWeight").drop("mirror is off, so it had no effect")
	st.Interval = iv
	switch {
	case len(sws) > 0:
		st.StepWeights = weights
		a.get("stepWeights").carry("Canary spec.strategy.stepWeights")
		a.get("maxWeight").translate("Canary spec.strategy", "Flagger ignores maxWeight when stepWeights is set; it is left out, since Sluice would cap the list at it")
	case slices.Equal(weights, sluiceWeights(int32(sw), weightOr(int32(mw), flaggerMaxWeight))):
		st.StepWeight = ptr(int32(sw))
		st.MaxWeight = ptr(weightOr(int32(mw), flaggerMaxWeight))
		a.get("stepWeight").carry("Canary spec.strategy.stepWeight")
		if hasMax {
			a.get("maxWeight").carry("Canary spec.strategy.maxWeight")
		} else {
			a.t.set(a.path+".maxWeight", mark{disp: Translated, to: "Canary spec.strategy.maxWeight", note: "Flagger's default 100 written out (Sluice's is 50)"})
		}
	default:
		st.StepWeights = weights
		note := fmt.Sprintf("Flagger adds stepWeight while below maxWeight and may pass it; the weights it walks, %v, written as stepWeights", weights)
		a.get("stepWeight").translate("Canary spec.strategy.stepWeights", note)
		a.get("maxWeight").translate("Canary spec.strategy.stepWeights", note)
	}
}

func weightOr(w, def int32) int32 {
	if w > 0 {
		return w
	}
	return def
}

// flaggerHeaderRoute converts spec.analysis.match (the A/B conditions)
// into a header route: headers only, the first match entry only. With
// nginx, as Flagger wrote it: a cookie header's exact value names the
// cookie (canary-by-cookie), else one header (canary-by-header).
func flaggerHeaderRoute(match node, router string) *v1alpha1.HeaderRoute {
	const to = "Canary spec.strategy.steps[setHeaderRoute].match"
	var hr *v1alpha1.HeaderRoute
	for i, m := range match.items() {
		if i > 0 {
			m.drop("Sluice's header route is one set of headers that must all match; Flagger's further match entries (OR) are not carried")
			continue
		}
		hr = &v1alpha1.HeaderRoute{}
		if router == "nginx" {
			flaggerNGINXMatch(m, hr)
			continue
		}
		for _, k := range m.get("headers").keys() {
			h := m.get("headers").get(k)
			if hm, ok := headerMatch(k, h, to); ok {
				hr.Match = append(hr.Match, hm)
			}
		}
		m.get("queryParams").drop("Sluice's header routes match headers only")
		m.get("sourceLabels").drop("Sluice's header routes match headers only (source labels need a mesh)")
	}
	if hr == nil || (len(hr.Match) == 0 && hr.Cookie == nil) {
		return nil
	}
	return hr
}

// flaggerNGINXMatch converts one A/B match for ingress-nginx, which
// routes by one cookie or one header: the cookie header's exact value
// is the cookie's name (the client sends it with the value always), as
// Flagger reads it; else the first header.
func flaggerNGINXMatch(m node, hr *v1alpha1.HeaderRoute) {
	const to = "Canary spec.strategy.steps[setHeaderRoute]"
	hs := m.get("headers")
	keys := hs.keys()
	for _, k := range keys {
		if strings.EqualFold(k, "cookie") && hs.get(k).get("exact").ok {
			hr.Cookie = &v1alpha1.CookieMatch{Name: hs.get(k).get("exact").translate(to+".cookie.name", "canary-by-cookie: a client whose cookie of this name is always gets the canary").str()}
			break
		}
	}
	for _, k := range keys {
		h := hs.get(k)
		if hr.Cookie != nil || len(hr.Match) > 0 {
			if !(strings.EqualFold(k, "cookie") && hr.Cookie != nil) {
				for _, op := range h.keys() {
					h.get(op).drop("ingress-nginx routes by one cookie or one header; this further condition is not carried")
				}
			}
			continue
		}
		if hm, ok := headerMatch(k, h, to+".match"); ok {
			hr.Match = append(hr.Match, hm)
		}
	}
	m.get("queryParams").drop("ingress-nginx's canary annotations match a header or a cookie only")
	m.get("sourceLabels").drop("ingress-nginx's canary annotations match a header or a cookie only")
}

// flaggerMetric converts one analysis metric.
func flaggerMetric(m node) (v1alpha1.MetricCheck, bool) {
	const to = "Canary spec.analysis.metrics[]"
	mc := v1alpha1.MetricCheck{Name: m.get("name").carry(to + ".name").str()}
	if d, ok := duration(m.get("interval")); ok {
		mc.Interval = d
		m.get("interval").carry(to + ".interval")
	}
	if tr := m.get("thresholdRange"); tr.ok {
		mc.ThresholdRange = &v1alpha1.ThresholdRange{}
		if v, ok := tr.get("min").carry(to + ".thresholdRange.min").float(); ok {
			mc.ThresholdRange.Min = ptr(v)
		}
		if v, ok := tr.get("max").carry(to + ".thresholdRange.max").float(); ok {
			mc.ThresholdRange.Max = ptr(v)
		}
	}
	if th, ok := m.get("threshold").float(); ok && mc.ThresholdRange == nil {
		// The deprecated threshold: a minimum for the success rate, a
		// maximum otherwise.
		if mc.Name == "request-success-rate" {
			mc.ThresholdRange = &v1alpha1.ThresholdRange{Min: ptr(th)}
		} else {
			mc.ThresholdRange = &v1alpha1.ThresholdRange{Max: ptr(th)}
		}
		m.get("threshold").translate(to+".thresholdRange", "the deprecated threshold: a minimum for request-success-rate, a maximum otherwise")
	} else {
		m.get("threshold").drop("thresholdRange is set and wins")
	}
	if ref := m.get("templateRef"); ref.ok {
		mc.TemplateRef = &v1alpha1.TemplateRef{
			Name:      ref.get("name").carry(to + ".templateRef.name").str(),
			Namespace: ref.get("namespace").carry(to + ".templateRef.namespace").str(),
		}
	}
	if vars := m.get("templateVariables"); vars.ok {
		mc.TemplateVariables = vars.stringMap()
		vars.carry(to + ".templateVariables")
	}
	if q := m.get("query"); q.ok {
		q.drop("an inline query: Sluice reads queries from MetricTemplates only; put it in a MetricTemplate and reference it")
		return mc, false
	}
	if mc.TemplateRef == nil && mc.Name != "request-success-rate" && mc.Name != "request-duration" {
		m.drop("neither a templateRef nor a builtin metric Sluice has (request-success-rate, request-duration)")
		return mc, false
	}
	if mc.ThresholdRange == nil {
		m.drop("no thresholdRange: nothing could fail the check")
		return mc, false
	}
	return mc, true
}

// flaggerWebhook converts one webhook; Sluice has Flagger's types.
func flaggerWebhook(w node) v1alpha1.Webhook {
	const to = "Canary spec.analysis.webhooks[]"
	h := v1alpha1.Webhook{
		Name: w.get("name").carry(to + ".name").str(),
		Type: v1alpha1.WebhookType(w.get("type").carry(to + ".type").str()),
		URL:  w.get("url").carry(to + ".url").str(),
	}
	if h.Type == "" {
		h.Type = v1alpha1.WebhookRollout
	}
	if d, ok := duration(w.get("timeout")); ok {
		h.Timeout = d
		w.get("timeout").carry(to + ".timeout")
	}
	if r, ok := w.get("retries").int(); ok {
		h.Retries = ptr(int32(r))
		w.get("retries").translate(to+".retries", "Sluice retries only after no answer, 429 or 5xx")
	}
	if md := w.get("metadata"); md.ok {
		h.Metadata = md.stringMap()
		md.carry(to + ".metadata")
	}
	if m := w.get("muteAlert"); m.bool() {
		m.drop("Sluice has no per-webhook mute: alerts are filtered by their severity only (spec.analysis.alerts[].severity)")
	} else {
		m.carry(to)
	}
	w.get("disableTLS").drop("Sluice always verifies TLS; use an http:// URL or a trusted certificate")
	return h
}

// flaggerMetricTemplate converts a MetricTemplate whose provider Sluice
// has: prometheus, datadog, newrelic, graphite or cloudwatch. An influxdb
// template is not converted: Flagger read its org from the Secret, and
// Sluice needs it in the template.
func flaggerMetricTemplate(t *tracker) []Output {
	const to = "MetricTemplate spec.provider"
	spec := t.at("spec")
	name, _ := nameOf(t.root)
	p := spec.get("provider")
	typ := p.get("type").str()
	if typ == "" {
		typ = v1alpha1.ProviderPrometheus // Flagger's default
	}
	if hint := flaggerProviderMissing(p, typ); hint != "" {
		spec.drop(hint)
		return nil
	}
	mt := &v1alpha1.MetricTemplate{ObjectMeta: objectMeta(t, name)}
	mt.APIVersion, mt.Kind = v1alpha1.GroupVersion.String(), "MetricTemplate"
	pr := &mt.Spec.Provider
	pr.Type = typ
	p.get("type").carry(to + ".type")

	addr := p.get("address")
	switch typ {
	case v1alpha1.ProviderNewRelic:
		flaggerNewRelicAddress(addr, pr)
	case v1alpha1.ProviderCloudWatch:
		addr.drop("Flagger's cloudwatch provider did not read it (the AWS SDK chose the regional endpoint), and Sluice would send every query there: set spec.provider.address by hand only for a VPC endpoint")
	default:
		// For datadog too: an address replaces the site's API address
		// (Flagger's default and Sluice's are https://api.datadoghq.com).
		pr.Address = addr.carry(to + ".address").str()
	}

	if h := p.get("headers"); h.ok {
		pr.Headers = h.stringMap()
		if typ == v1alpha1.ProviderPrometheus {
			h.carry(to + ".headers")
		} else {
			h.translate(to+".headers", "Flagger sent these headers to Prometheus only; Sluice adds them to every request to this "+typ+" provider")
		}
	}

	if sr := p.get("secretRef"); sr.ok {
		ref := &corev1.LocalObjectReference{Name: sr.get("name").str()}
		switch typ {
		case v1alpha1.ProviderPrometheus:
			pr.SecretRef = ref
			sr.translate(to+".secretRef", "Sluice reads keys username and password (basic auth) or token (bearer); Flagger's address key is not read")
		case v1alpha1.ProviderGraphite:
			pr.SecretRef = ref
			sr.carry(to + ".secretRef")
		case v1alpha1.ProviderDatadog:
			// Sluice reads Flagger's key names datadog_api_key and
			// datadog_application_key as well as its own.
			pr.SecretRef = ref
			sr.carry(to + ".secretRef")
		case v1alpha1.ProviderNewRelic:
			pr.SecretRef = ref
			sr.translate(to+".secretRef", "Sluice asks New Relic's NerdGraph API, not the Insights query API Flagger asked: the Secret needs key api-key holding a user key (Flagger's newrelic_query_key is an Insights query key, which NerdGraph refuses) and key account-id (the value of Flagger's newrelic_account_id)")
		case v1alpha1.ProviderCloudWatch:
			sr.drop("Flagger's cloudwatch provider read no Secret (it used its pod's AWS identity); Sluice reads keys aws-access-key-id and aws-secret-access-key from a secretRef, so none is written: Sluice uses its own pod's identity")
		}
	}

	if in := p.get("insecureSkipVerify"); in.ok {
		switch {
		case !in.bool():
			in.carry(to + ".insecureSkipVerify")
		case typ != v1alpha1.ProviderPrometheus && typ != v1alpha1.ProviderGraphite:
			in.dropf("Flagger's %s provider did not read it; Sluice verifies the certificate", typ)
		case !strings.HasPrefix(pr.Address, "https://"):
			in.drop("the address is not https://: there is no certificate to verify (Sluice refuses the setting there)")
		default:
			pr.InsecureSkipVerify = true
			in.carry(to + ".insecureSkipVerify")
		}
	}

	region := p.get("region")
	if typ == v1alpha1.ProviderCloudWatch {
		pr.CloudWatch = &v1alpha1.CloudWatchProvider{Region: region.carry(to + ".cloudWatch.region").str()}
	} else {
		region.dropf("a cloud region: only a cloudwatch provider reads one (Flagger's %s provider did not either)", typ)
	}
	if typ == v1alpha1.ProviderDatadog {
		pr.Datadog = &v1alpha1.DatadogProvider{APIVersion: "v1"}
	}

	q, note := flaggerQuery(spec.get("query").str())
	mt.Spec.Query = q
	var notes []string
	if note != "" {
		notes = append(notes, note)
	}
	switch typ {
	case v1alpha1.ProviderDatadog:
		notes = append(notes, "Flagger asked Datadog's v1 query API (kept: spec.provider.datadog.apiVersion v1) over 10 metric intervals and read the oldest point; Sluice reads the newest non-null point over the check's interval (raise the check's interval for a longer window)")
	case v1alpha1.ProviderCloudWatch:
		notes = append(notes, "Flagger asked GetMetricData over 10 metric intervals, Sluice over the check's interval; both read the newest value of the first result, and Sluice wants exactly one (ReturnData false on the others). Without a secretRef Sluice uses its controller pod's AWS identity, as Flagger used its own: give Sluice's service account cloudwatch:GetMetricData")
	case v1alpha1.ProviderGraphite:
		if !graphiteHasFrom(q) {
			notes = append(notes, "no from: Flagger left the range to graphite-web (its default, the last 24 hours); Sluice asks for the check's interval (from=-<interval>s)")
		}
	case v1alpha1.ProviderNewRelic:
		if nrqlSince.MatchString(q) {
			notes = append(notes, "the query has its own SINCE: Flagger appended a second one (SINCE <interval> seconds ago); Sluice appends its window only to a query without SINCE, so the query's own applies")
		}
	}
	if len(notes) > 0 {
		spec.get("query").translate("MetricTemplate spec.query", strings.Join(notes, "; "))
	} else {
		spec.get("query").carry("MetricTemplate spec.query")
	}
	return []Output{{Object: mt}}
}

// flaggerProviderMissing says why a template of provider type typ is not
// converted, or "" when it is: Sluice has no such provider, or the
// template lacks what Sluice's provider needs and convert cannot know.
func flaggerProviderMissing(p node, typ string) string {
	switch typ {
	case v1alpha1.ProviderPrometheus, v1alpha1.ProviderGraphite:
		if p.get("address").str() == "" {
			return fmt.Sprintf("a %s provider without an address (Flagger could not query it either): add spec.provider.address and convert again; this template was not converted", typ)
		}
	case v1alpha1.ProviderDatadog, v1alpha1.ProviderNewRelic:
		if !p.get("secretRef").ok {
			return fmt.Sprintf("a %s provider without a secretRef (Flagger could not query it either): add spec.provider.secretRef and convert again; this template was not converted", typ)
		}
	case v1alpha1.ProviderCloudWatch:
		if p.get("region").str() == "" {
			return "a cloudwatch provider without a region (Flagger could not query it either): add spec.provider.region and convert again; this template was not converted"
		}
	case v1alpha1.ProviderInfluxDB:
		return "an InfluxDB 2 (Flux) provider: Flagger read the organisation from the Secret's org key, which convert does not see, and Sluice needs it in the template; this template was not converted: write it by hand with the same address, secretRef and query, and spec.provider.influxDB: {org: <your org>} (Sluice reads the Secret's token key as it is)"
	default:
		return fmt.Sprintf("a %s provider: Sluice has none (it queries Prometheus, Datadog, New Relic, CloudWatch, Graphite and InfluxDB, and any JSON endpoint with the web provider); this template was not converted", typ)
	}
	return ""
}

// flaggerNewRelicAddress maps the Insights API address Flagger asked onto
// the NerdGraph endpoint Sluice asks: the region's, or none Sluice knows.
func flaggerNewRelicAddress(addr node, pr *v1alpha1.MetricProvider) {
	const to = "MetricTemplate spec.provider"
	a := strings.TrimRight(addr.str(), "/")
	switch {
	case !addr.ok:
	case a == "https://insights-api.newrelic.com":
		addr.translate(to, "the Insights API of a US account, Flagger's default: Sluice asks NerdGraph at its default, https://api.newrelic.com")
	case a == "https://insights-api.eu.newrelic.com":
		pr.NewRelic = &v1alpha1.NewRelicProvider{Region: "EU"}
		addr.translate(to+".newRelic.region", "the Insights API of an EU account: Sluice asks NerdGraph in the EU region (https://api.eu.newrelic.com)")
	default:
		addr.drop("an Insights API address: Sluice asks NerdGraph instead (POST <address>/graphql); set spec.provider.address to the NerdGraph endpoint your proxy serves, or set spec.provider.newRelic.region")
	}
}

var nrqlSince = regexp.MustCompile(`(?i)\bSINCE\b`)

// graphiteHasFrom says whether a Graphite query in render-parameter form
// (target=...&from=...) sets its range.
func graphiteHasFrom(q string) bool {
	q = strings.Join(strings.Fields(q), "")
	if !strings.HasPrefix(q, "target=") {
		return false
	}
	for _, kv := range strings.Split(q, "&") {
		if strings.HasPrefix(kv, "from=") {
			return true
		}
	}
	return false
}

var flaggerVariable = regexp.MustCompile(`\{\{-?\s*variables\.([A-Za-z0-9_-]+)\s*-?\}\}`)

// flaggerQuery rewrites Flagger's {{ variables.x }} into Sluice's
// {{ .x }}; the other functions are the same.
func flaggerQuery(q string) (string, string) {
	out := flaggerVariable.ReplaceAllStringFunc(q, func(s string) string {
		return variableRef(flaggerVariable.FindStringSubmatch(s)[1])
	})
	note := ""
	if out != q {
		note = "{{ variables.x }} written as {{ .x }}"
	}
	if strings.Contains(out, "{{ ingress }}") || strings.Contains(out, "{{ingress}}") {
		note = strings.TrimPrefix(note+"; {{ ingress }} has no Sluice equivalent and fails to render", "; ")
	}
	return out, note
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// variableRef is how a Sluice query names a template variable.
func variableRef(name string) string {
	if identifier.MatchString(name) {
		return "{{ ." + name + " }}"
	}
	return fmt.Sprintf("{{ index . %q }}", name)
}

// flaggerAlertProvider converts an AlertProvider into Sluice's of the same
// name. Sluice reads the webhook URL from a Secret only (the URL is a
// credential), so a provider without a secretRef is not converted, nor is
// a Rocket.Chat one: Sluice has no such type.
func flaggerAlertProvider(t *tracker) []Output {
	const to = "AlertProvider spec"
	spec := t.at("spec")
	name, _ := nameOf(t.root)
	typ, typeNote := flaggerAlertType(spec.get("type").str())
	if typ == "" {
		spec.drop(typeNote)
		return nil
	}
	secret := spec.get("secretRef").get("name").str()
	if secret == "" {
		if spec.get("address").str() != "" {
			spec.drop("the webhook URL is in spec.address: Sluice reads it from a Secret only (it is a credential), so this provider was not converted: create a Secret with key address holding the URL, set spec.secretRef to it, and convert again")
		} else {
			spec.drop("neither an address nor a secretRef (Flagger could not post either): create a Secret with key address holding the webhook URL, set spec.secretRef to it, and convert again; this provider was not converted")
		}
		return nil
	}
	ap := &v1alpha1.AlertProvider{ObjectMeta: objectMeta(t, name)}
	ap.APIVersion, ap.Kind = v1alpha1.GroupVersion.String(), "AlertProvider"
	ap.Spec.Type = typ
	if typeNote == "" {
		spec.get("type").carry(to + ".type")
	} else {
		spec.get("type").translate(to+".type", typeNote)
	}
	ap.Spec.SecretRef.Name = secret
	t.set(spec.get("secretRef").path, mark{disp: Carried, to: to + ".secretRef", note: "Sluice reads the Secret's keys address (the webhook URL) and token (sent as a bearer token) as they are; a proxy key is not read: Sluice posts through the controller's HTTPS_PROXY environment"})
	if spec.get("address").ok {
		spec.get("address").drop("Sluice reads the webhook URL from the Secret's address key only, as Flagger did when the Secret had one: if the Secret has no address key, add this URL to it (a credential: it is not written here)")
	}
	spec.get("proxy").drop("Sluice posts through the proxy in the controller's environment (HTTPS_PROXY, NO_PROXY): set it on the controller's Deployment")
	for _, f := range []struct {
		key string
		out *string
	}{{"channel", &ap.Spec.Channel}, {"username", &ap.Spec.Username}} {
		n := spec.get(f.key)
		if utf8.RuneCountInString(n.str()) > 80 {
			n.dropf("longer than the 80 characters Sluice takes")
		} else {
			*f.out = n.carry(to + "." + f.key).str()
		}
	}
	return []Output{{Object: ap}}
}

// flaggerAlertType is the Sluice provider type of a Flagger one, and a
// note when it posts otherwise; no type (and why, and what to use) when
// Sluice has none.
func flaggerAlertType(typ string) (string, string) {
	switch typ {
	case "slack":
		return v1alpha1.AlertSlack, ""
	case "discord":
		return v1alpha1.AlertDiscord, "Flagger posted Slack-format messages to the webhook's /slack endpoint; Sluice posts Discord's own embeds to the Secret's address as it is: the same webhook URL serves"
	case "gchat":
		return v1alpha1.AlertGoogleChat, "Sluice's name for Google Chat; the Secret's address, the space's incoming webhook URL, is read as it is"
	case "msteams":
		return v1alpha1.AlertMSTeams, "Sluice posts an Adaptive Card to a Teams Workflows webhook: the Secret's address must be a Workflows webhook URL (in Teams: Workflows, \"Post to a channel when a webhook request is received\"); the Office 365 connector URL Flagger posted MessageCards to is retired and takes another format"
	case "rocket":
		return "", "a Rocket.Chat provider: Sluice has no rocket type; Rocket.Chat's incoming webhooks take Slack-style messages, so an AlertProvider of type slack with the same Secret is the nearest (check how the messages show), or type webhook (Sluice's own JSON) through a bridge; this provider was not converted"
	case "":
		return "", "no type (Flagger's CRD requires one): this provider was not converted"
	}
	return "", fmt.Sprintf("a %s provider: Sluice has none (slack, msteams, discord, googlechat, webhook); this provider was not converted", typ)
}

// flaggerAlerts converts spec.analysis.alerts: Sluice's alerts are
// Flagger's, and so are the severities (info: every event; warn: warnings
// and failures; error: failed releases).
func flaggerAlerts(al node, an *v1alpha1.Analysis) {
	const to = "Canary spec.analysis.alerts[]"
	items := al.items()
	if al.ok && len(items) == 0 {
		al.carry("Canary spec.analysis.alerts")
	}
	seen := map[string]bool{}
	for _, a := range items {
		name, ref, sev := a.get("name").str(), a.get("providerRef"), a.get("severity").str()
		switch {
		case name == "" || ref.get("name").str() == "":
			a.drop("an alert needs a name and providerRef.name (Flagger's CRD requires both): not written")
			continue
		case utf8.RuneCountInString(name) > 63:
			a.drop("Sluice's alert names are at most 63 characters: not written (rename it)")
			continue
		case seen[name]:
			a.dropf("a second alert named %s: Sluice's alerts are keyed by name; not written (rename it)", name)
			continue
		case sev != "" && sev != v1alpha1.SeverityInfo && sev != v1alpha1.SeverityWarn && sev != v1alpha1.SeverityError:
			a.dropf("severity %s: Sluice's are info, warn and error; not written", sev)
			continue
		case len(an.Alerts) == 10:
			a.drop("Sluice takes at most 10 alerts per Canary: not written")
			continue
		}
		seen[name] = true
		an.Alerts = append(an.Alerts, v1alpha1.Alert{
			Name:     a.get("name").carry(to + ".name").str(),
			Severity: a.get("severity").carry(to + ".severity").str(),
			ProviderRef: v1alpha1.AlertProviderRef{
				Name:      ref.get("name").carry(to + ".providerRef.name").str(),
				Namespace: ref.get("namespace").carry(to + ".providerRef.namespace").str(),
			},
		})
	}
}

// headerMatch converts a string match on header name (Istio's exact,
// regex, prefix or suffix, as Flagger takes it; Argo's headerValue) into
// a Sluice header match, marking the field carried or translated to to.
// A prefix or suffix becomes an anchored regular expression.
func headerMatch(name string, v node, to string) (v1alpha1.HeaderMatch, bool) {
	hm := v1alpha1.HeaderMatch{Name: name}
	switch {
	case v.get("exact").ok:
		hm.Exact = ptr(v.get("exact").carry(to).str())
	case v.get("regex").ok:
		hm.Regex = ptr(v.get("regex").carry(to).str())
	case v.get("prefix").ok:
		hm.Regex = ptr(regexp.QuoteMeta(v.get("prefix").str()) + ".*")
		v.get("prefix").translate(to, "a prefix written as a regular expression")
	case v.get("suffix").ok:
		hm.Regex = ptr(".*" + regexp.QuoteMeta(v.get("suffix").str()))
		v.get("suffix").translate(to, "a suffix written as a regular expression")
	default:
		return hm, false
	}
	return hm, true
}
