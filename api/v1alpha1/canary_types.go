package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// CanarySpec says which workload to release, through which router, in which
// steps.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.strategy.steps) && size(self.strategy.steps) > 0 && (has(self.strategy.stepWeight) || has(self.strategy.stepWeights)))",message="spec.strategy: use either steps or the stepWeight/stepWeights shorthand, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.service.backendRefs) || has(self.router.gatewayAPI)",message="spec.service.backendRefs: custom backends are supported with the gatewayAPI router only"
// +kubebuilder:validation:XValidation:rule="!has(self.router.consul) || !has(self.strategy.steps) || !self.strategy.steps.exists(s, has(s.setMirror))",message="spec.strategy.steps[].setMirror: Consul's config entries cannot mirror traffic; remove the mirror steps"
// +kubebuilder:validation:XValidation:rule="!has(self.router.consul) || !has(self.router.consul.stableSubset) || !has(self.router.consul.canarySubset) || self.router.consul.stableSubset != self.router.consul.canarySubset",message="spec.router.consul: stableSubset and canarySubset must differ"
// +kubebuilder:validation:XValidation:rule="!has(self.router.traefik) || !has(self.router.traefik.ingressRoute) || !has(self.strategy.steps) || !self.strategy.steps.exists(s, has(s.setMirror))",message="spec.strategy.steps[].setMirror: with the traefik router, mirror steps need TraefikService mode (a mirroring TraefikService); remove spec.router.traefik.ingressRoute or the mirror steps"
// +kubebuilder:validation:XValidation:rule="!has(self.router.gatewayAPI) || self.router.gatewayAPI.parentRefs.all(p, !has(p.kind) || p.kind != 'Service' || (has(p.group) && size(p.group) > 0) || (has(p.namespace) && size(p.namespace) > 0) || (p.name != (has(self.service.name) ? self.service.name : self.targetRef.name) + '-primary' && p.name != (has(self.service.name) ? self.service.name : self.targetRef.name) + '-canary'))",message="spec.router.gatewayAPI.parentRefs: a Service parent (a mesh route) must not be the -primary or -canary Service: they are the route's backends; use the apex Service (spec.service.name, or the target's name)"
// +kubebuilder:validation:XValidation:rule="!has(self.strategy.sessionAffinity) || has(self.router.gatewayAPI) || (has(self.router.traefik) && !has(self.router.traefik.ingressRoute)) || (has(self.router.istio) && !has(self.router.istio.virtualService))",message="spec.strategy.sessionAffinity: sticky canaries need the gatewayAPI router, the traefik router in TraefikService mode (no spec.router.traefik.ingressRoute) or the istio router with a VirtualService Sluice owns (no spec.router.istio.virtualService); remove sessionAffinity or change the router"
// +kubebuilder:validation:XValidation:rule="!has(self.router.nginx) || !has(self.strategy.steps) || !self.strategy.steps.exists(s, has(s.setMirror))",message="spec.strategy.steps[].setMirror: ingress-nginx's canary annotations cannot mirror a share of requests; remove the mirror steps"
// +kubebuilder:validation:XValidation:rule="!has(self.router.nginx) || !has(self.strategy.steps) || self.strategy.steps.all(s, !has(s.setHeaderRoute) || (has(s.setHeaderRoute.cookie) ? ((!has(s.setHeaderRoute.match) || size(s.setHeaderRoute.match) == 0) && (!has(s.setHeaderRoute.cookie.value) || s.setHeaderRoute.cookie.value == 'always')) : (has(s.setHeaderRoute.match) && size(s.setHeaderRoute.match) == 1)))",message="spec.strategy.steps[].setHeaderRoute: ingress-nginx's canary-by-header matches one header, and canary-by-cookie one cookie whose value is always; give exactly one match, or a cookie alone with value always (the default)"
// +kubebuilder:validation:XValidation:rule="!has(self.strategy.blueGreen) || !has(self.strategy.blueGreen.previewService) || !(self.strategy.blueGreen.previewService in [(has(self.service.name) ? self.service.name : self.targetRef.name), (has(self.service.name) ? self.service.name : self.targetRef.name) + '-primary', (has(self.service.name) ? self.service.name : self.targetRef.name) + '-canary'])",message="spec.strategy.blueGreen.previewService must differ from the apex Service (spec.service.name, or the target's name) and its -primary and -canary Services, which Sluice keeps for other purposes; choose another name, such as <service>-preview"
// +kubebuilder:validation:XValidation:rule="has(self.router.gatewayAPI) || has(self.router.traefik) || has(self.router.ambassador) || has(self.router.consul) || has(self.router.nginx) || has(self.router.istio) || !has(self.strategy.steps) || !self.strategy.steps.exists(s, has(s.setHeaderRoute) || has(s.setMirror))",message="spec.strategy.steps[]: setHeaderRoute and setMirror need a router (spec.router); without one the apex Service can only split by endpoints"
type CanarySpec struct {
	// TargetRef names the Deployment whose new revisions are released. Sluice
	// keeps the stable copy in <name>-primary and runs each new revision in
	// the Deployment itself.
	TargetRef TargetRef `json:"targetRef"`

	// Service describes the port the workload serves and the backends each
	// phase's traffic goes to.
	Service ServiceSpec `json:"service"`

	// Router is the traffic router that carries the release's traffic.
	// +kubebuilder:default={}
	// +optional
	Router RouterSpec `json:"router,omitempty"`

	// Strategy is the release's steps.
	Strategy Strategy `json:"strategy"`

	// Analysis judges the release by metrics while it runs.
	// +optional
	Analysis *Analysis `json:"analysis,omitempty"`

	// ProgressDeadline is how long a release may go without progress (a step
	// applied, a copy becoming ready) before it is rolled back and marked
	// Failed. Time spent in pauses, or while no Sluice controller was
	// acting (a restart, a leader failover), or while the controller could
	// not see the cluster (an apiserver outage, until its watches are back),
	// does not count. Default 10m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	ProgressDeadline *metav1.Duration `json:"progressDeadline,omitempty"`

	// PrimaryReadyThreshold is the percentage of the primary's replicas that
	// must be available before traffic moves to it. Default 100.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	PrimaryReadyThreshold *int32 `json:"primaryReadyThreshold,omitempty"`

	// CanaryReadyThreshold is the percentage of the canary's replicas that
	// must be available before traffic moves to it. Default 100.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	CanaryReadyThreshold *int32 `json:"canaryReadyThreshold,omitempty"`

	// Paused holds the release where it is: no step advances and no timer
	// runs until it is set back to false. `kubectl sluice pause/resume` set it.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// Suspend stops Sluice from acting on this Canary at all (no route, scale
	// or status changes) until it is cleared.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Verification bounds how long and how often the promoted primary may
	// differ from its revision's record before the promotion fails safe.
	// +optional
	Verification *Verification `json:"verification,omitempty"`

	// HandBackOnDeletion says which copy serves once this Canary is deleted.
	// LastGood (the default): your Deployment gets the traffic back only
	// when it runs the last good revision (status.stableRevision);
	// otherwise (a release failed, was aborted or is still being
	// analysed) the primary copy keeps serving the last good revision,
	// left in place and no longer managed by Sluice. Target: your
	// Deployment gets the traffic back whatever revision it runs, once its
	// pods are available.
	// +kubebuilder:validation:Enum=LastGood;Target
	// +optional
	HandBackOnDeletion HandBack `json:"handBackOnDeletion,omitempty"`

	// RevisionHistoryLimit is how many CanaryRevision records to keep
	// (the stable revision's is always kept). Default 10.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`

	// AutoscalerRef names the autoscaler of the target Deployment: an
	// autoscaling/v2 HorizontalPodAutoscaler or a KEDA ScaledObject
	// (keda.sh/v1alpha1) in the Canary's namespace. Sluice keeps a copy of
	// it, <name>-primary, scaling the primary (its bounds, metrics and
	// behaviour copied when the Canary starts and at each promotion), and
	// leaves yours on the Deployment: the canary scales with its own load
	// during a release and stays at zero between releases (docs/autoscaling.md).
	// +optional
	AutoscalerRef *AutoscalerRef `json:"autoscalerRef,omitempty"`
}

// Verification of the promoted primary against its revision's record:
// generation observed, replicas updated and available at the ready
// threshold, every container's image and resources as recorded.
// AutoscalerRef names an autoscaler.
//
// +kubebuilder:validation:XValidation:rule="(self.kind == 'HorizontalPodAutoscaler' && self.apiVersion == 'autoscaling/v2') || (self.kind == 'ScaledObject' && self.apiVersion == 'keda.sh/v1alpha1')",message="spec.autoscalerRef: Sluice supports kind HorizontalPodAutoscaler with apiVersion autoscaling/v2, and kind ScaledObject with apiVersion keda.sh/v1alpha1"
// +kubebuilder:validation:XValidation:rule="!has(self.primaryScalerQueries) || self.kind == 'ScaledObject'",message="spec.autoscalerRef.primaryScalerQueries rewrites KEDA triggers' queries; it needs kind ScaledObject"
type AutoscalerRef struct {
	// APIVersion is autoscaling/v2 (HorizontalPodAutoscaler) or
	// keda.sh/v1alpha1 (ScaledObject).
	APIVersion string `json:"apiVersion"`
	// Kind is HorizontalPodAutoscaler or ScaledObject.
	// +kubebuilder:validation:Enum=HorizontalPodAutoscaler;ScaledObject
	Kind string `json:"kind"`
	// Name is the autoscaler's name, in the Canary's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// CanaryReplicas is where the canary's replicas start when a release
	// scales it up from zero: Primary (default), the primary's current
	// count, and before all traffic moves to the canary (the promotion,
	// a blue/green switch) at least that count again; Autoscaler, the
	// autoscaler's own minimum, leaving every later count to it.
	// +kubebuilder:validation:Enum=Primary;Autoscaler
	// +optional
	CanaryReplicas string `json:"canaryReplicas,omitempty"`
	// PrimaryScalerQueries, for a ScaledObject, replaces the query of the
	// named triggers in the primary's copy (a query that measures the
	// canary's load would otherwise scale the primary). Triggers not named
	// keep their metadata.
	// +kubebuilder:validation:MaxProperties=20
	// +optional
	PrimaryScalerQueries map[string]string `json:"primaryScalerQueries,omitempty"`
}

// CanaryReplicas values.
const (
	CanaryReplicasPrimary    = "Primary"
	CanaryReplicasAutoscaler = "Autoscaler"
)

type Verification struct {
	// Timeout is how long the primary may take to match its record after
	// promotion starts. Default 5m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Retries is how many mismatches are tolerated (the primary's template
	// changed by someone else, which Sluice re-applies; or its Deployment
	// reporting a failure such as exceeded quota), counted at most once per
	// interval. One more fails the promotion. Default 3.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Retries *int32 `json:"retries,omitempty"`
	// Interval between counted mismatches. Default 10s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
}

// VerificationStatus is the verification of the primary at a revision.
type VerificationStatus struct {
	// Revision verified.
	Revision string `json:"revision"`
	// State: Verifying, Verified or Failed.
	State string `json:"state"`
	// StartedAt is when the promotion started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// Mismatches counted so far.
	// +optional
	Mismatches int32 `json:"mismatches,omitempty"`
	// LastMismatch says what differed the last time a mismatch was
	// counted.
	// +optional
	LastMismatch string `json:"lastMismatch,omitempty"`
	// LastMismatchField is what differed: image, resources, replicas,
	// template or rollout (the primary's Deployment reported a failure).
	// +optional
	LastMismatchField string `json:"lastMismatchField,omitempty"`
	// LastMismatchTime is when the last mismatch was counted.
	// +optional
	LastMismatchTime *metav1.Time `json:"lastMismatchTime,omitempty"`
	// FinishedAt is when it was Verified or Failed.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
}

// EndpointShare counts the Ready endpoints of each copy the apex Service
// lists (no router).
type EndpointShare struct {
	// Canary is the canary's endpoints listed.
	Canary int32 `json:"canary"`
	// Primary is the primary's endpoints listed.
	Primary int32 `json:"primary"`
}

// Percent is the canary's share of requests the endpoints give, in
// percent (0 when none is listed).
func (e *EndpointShare) Percent() float64 {
	if e == nil || e.Canary+e.Primary == 0 {
		return 0
	}
	return 100 * float64(e.Canary) / float64(e.Canary+e.Primary)
}

// RouteSettling is a route the router was seen to carry, and since when.
type RouteSettling struct {
	// CanaryWeight is the canary's share of the route, in percent.
	CanaryWeight int32 `json:"canaryWeight"`
	// MirrorPercent is the share of requests copied to the canary, in
	// percent.
	// +optional
	MirrorPercent int32 `json:"mirrorPercent,omitempty"`
	// HeaderRoute is the header route sending requests to the canary:
	// "name=value" for an exact match, "name~regex" for a regular
	// expression, joined by ";".
	// +optional
	HeaderRoute string `json:"headerRoute,omitempty"`
	// Since is when the router was first seen to carry the route.
	Since Timestamp `json:"since"`
}

// Is says whether rs is the route of the given weight, mirror and header
// route (false for nil).
func (rs *RouteSettling) Is(canaryWeight, mirrorPercent int32, headerRoute string) bool {
	return rs != nil && rs.CanaryWeight == canaryWeight && rs.MirrorPercent == mirrorPercent && rs.HeaderRoute == headerRoute
}

// Verification states.
const (
	VerificationVerifying = "Verifying"
	VerificationVerified  = "Verified"
	VerificationFailed    = "Failed"
)

// HandBack is which copy serves after a Canary is deleted.
type HandBack string

// The hand-back choices.
const (
	// HandBackLastGood hands traffic to the user's Deployment only when it
	// runs the last good revision, and keeps the primary otherwise.
	HandBackLastGood HandBack = "LastGood"
	// HandBackTarget hands traffic to the user's Deployment whatever
	// revision it runs.
	HandBackTarget HandBack = "Target"
)

// TargetRef names the Deployment under release.
type TargetRef struct {
	// APIVersion of the target; only apps/v1 is supported.
	// +kubebuilder:validation:Enum=apps/v1
	// +kubebuilder:default=apps/v1
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the target; only Deployment is supported.
	// +kubebuilder:validation:Enum=Deployment
	// +kubebuilder:default=Deployment
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the Deployment, in the Canary's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=244
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// ServiceSpec is the port the workload serves and the phases' backends.
type ServiceSpec struct {
	// Name of the apex Service; <name>-primary and <name>-canary are derived
	// from it. Default: the target's name.
	// +kubebuilder:validation:MaxLength=55
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Name string `json:"name,omitempty"`
	// Port the Services expose.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// TargetPort is the container port (number or name). Default: Port.
	// +optional
	TargetPort string `json:"targetPort,omitempty"`
	// PortName names the Service port. Default http.
	// +kubebuilder:validation:MaxLength=15
	// +optional
	PortName string `json:"portName,omitempty"`
	// BackendRefs replace the generated <name>-primary / <name>-canary
	// Service as a phase's backends, for example to send canary traffic
	// through an auth proxy. A phase with several backends splits that
	// phase's share by their relative weights.
	// +optional
	BackendRefs *PhaseBackendRefs `json:"backendRefs,omitempty"`
}

// PhaseBackendRefs are user-supplied backends per phase.
//
// +kubebuilder:validation:XValidation:rule="!has(self.primary) || size(self.primary) == 0 || self.primary.exists(b, !has(b.weight) || b.weight > 0)",message="spec.service.backendRefs.primary: at least one backend needs a weight above 0, or the phase could carry no traffic"
// +kubebuilder:validation:XValidation:rule="!has(self.canary) || size(self.canary) == 0 || self.canary.exists(b, !has(b.weight) || b.weight > 0)",message="spec.service.backendRefs.canary: at least one backend needs a weight above 0, or the phase could carry no traffic"
type PhaseBackendRefs struct {
	// Primary backends carry the stable share.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Primary []BackendRef `json:"primary,omitempty"`
	// Canary backends carry the canary share.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Canary []BackendRef `json:"canary,omitempty"`
}

// BackendRef is one backend of a phase, in Gateway API terms.
//
// +kubebuilder:validation:XValidation:rule="has(self.port) || (has(self.kind) && self.kind != 'Service') || (has(self.group) && size(self.group) > 0 && self.group != 'core')",message="backendRefs[].port is required when the backend is a Service (group \"\" and kind Service)"
type BackendRef struct {
	// Group of the referent; "" (the default) or "core" is the core group.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Group *string `json:"group,omitempty"`
	// Kind of the referent. Default Service.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`
	// +optional
	Kind *string `json:"kind,omitempty"`
	// Name of the referent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the referent. Default: the Canary's namespace. A
	// reference to another namespace needs a ReferenceGrant there.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Port of the referent; required for a Service.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`
	// Weight relative to the phase's other backends. Default 1.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Weight *int32 `json:"weight,omitempty"`
	// Filters applied to requests sent to this backend.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Filters []gwv1.HTTPRouteFilter `json:"filters,omitempty"`
}

// RouterSpec selects at most one router. Without one (no spec.router, or
// an empty one) Sluice routes through the apex Service alone: all
// traffic to one copy by its selector, and a canary share between them
// by the share of Ready endpoints the apex Service lists (docs/no-router.md).
//
// +kubebuilder:validation:XValidation:rule="[has(self.gatewayAPI), has(self.traefik), has(self.ambassador), has(self.consul), has(self.nginx), has(self.istio)].filter(x, x).size() <= 1",message="spec.router: set at most one router (supported: gatewayAPI, traefik, ambassador, consul, nginx, istio; none routes through the apex Service alone)"
type RouterSpec struct {
	// GatewayAPI: Sluice generates and owns an HTTPRoute named after the
	// Canary whose rule splits traffic between the phases' backends.
	// +optional
	GatewayAPI *GatewayAPIRouter `json:"gatewayAPI,omitempty"`
	// Traefik (v2.10+ or v3): Sluice owns a weighted TraefikService named
	// after the Canary that your IngressRoute references, or, with
	// ingressRoute, edits only the weights of one route of your own
	// IngressRoute.
	// +optional
	Traefik *TraefikRouter `json:"traefik,omitempty"`
	// Ambassador (Emissary-ingress, getambassador.io v3alpha1 or v2): for
	// each Mapping named, Sluice keeps a <mapping>-canary copy whose service
	// is the canary Service and whose weight is the canary's share.
	// +optional
	Ambassador *AmbassadorRouter `json:"ambassador,omitempty"`
	// Consul (consul-k8s config entries): the primary's and the canary's
	// pods register under one Consul service, told apart by a service-meta
	// value Sluice sets on their pod templates; a ServiceResolver's two
	// subsets select them and a ServiceSplitter splits between them.
	// +optional
	Consul *ConsulRouter `json:"consul,omitempty"`
	// NGINX (ingress-nginx's canary annotations): beside your Ingress,
	// which sends to the apex Service, Sluice keeps an <ingress>-canary
	// Ingress with the same rules sending to the canary Service, and sets
	// its canary-weight (and canary-by-header for a header step).
	// ingress-nginx was retired in March 2026: this router is for the
	// clusters that still run it; the gatewayAPI router is the way
	// forward.
	// +optional
	NGINX *NGINXRouter `json:"nginx,omitempty"`
	// Istio (networking.istio.io VirtualService and DestinationRule), in
	// one of two shapes. Without virtualService Sluice owns a
	// VirtualService named after the Canary for hosts through gateways,
	// whose route splits between the -primary and -canary Services. With
	// virtualService and destinationRule Sluice edits your own: only the
	// weights of the stable and canary destinations of the named HTTP
	// routes, and the labels of the DestinationRule's stable and canary
	// subsets; everything else stays as you wrote it.
	// +optional
	Istio *IstioRouter `json:"istio,omitempty"`
}

// IstioRouter routes through Istio.
//
// +kubebuilder:validation:XValidation:rule="has(self.virtualService) == has(self.destinationRule)",message="spec.router.istio: virtualService and destinationRule go together (your own objects, edited in place); leave both out for a VirtualService Sluice owns"
// +kubebuilder:validation:XValidation:rule="!has(self.virtualService) || (!has(self.hosts) && !has(self.gateways) && !has(self.timeout) && !has(self.retries) && !has(self.trafficPolicy))",message="spec.router.istio: hosts, gateways, timeout, retries and trafficPolicy shape the VirtualService and DestinationRules Sluice owns; with virtualService they are your objects' own: set them there"
type IstioRouter struct {
	// Hosts of the VirtualService Sluice owns: external names served
	// through gateways, or Service names for traffic inside the mesh.
	// Default: the apex Service.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +optional
	Hosts []string `json:"hosts,omitempty"`
	// Gateways the VirtualService Sluice owns is bound to, as Istio
	// names them (<namespace>/<gateway>, or mesh for the sidecars of the
	// mesh). Default: mesh only.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=317
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// Timeout of the route Sluice owns. Default: none (Istio's).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Retries of the route Sluice owns. Default: Istio's.
	// +optional
	Retries *IstioRetries `json:"retries,omitempty"`
	// TrafficPolicy, when set, is an Istio DestinationRule trafficPolicy
	// (connection pool, load balancer, outlier detection, TLS) for both
	// copies: Sluice then owns two DestinationRules, <canary>-primary and
	// <canary>-canary, for the -primary and -canary Services. Without it
	// Sluice writes none, so a DestinationRule of yours for a wider host
	// (a namespace-wide TLS mode) keeps applying to the copies.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +optional
	TrafficPolicy *runtime.RawExtension `json:"trafficPolicy,omitempty"`
	// VirtualService, when set, is your VirtualService whose HTTP routes
	// Sluice splits in place.
	// +optional
	VirtualService *IstioVirtualServiceRef `json:"virtualService,omitempty"`
	// DestinationRule, with virtualService, is your DestinationRule for
	// the host the routes send to: Sluice sets the labels of its stable
	// and canary subsets (adding them when missing) to the selectors of
	// the -primary and -canary Services, and changes nothing else. Its
	// host must be a Service of yours that selects the pods of both
	// copies.
	// +optional
	DestinationRule *IstioDestinationRuleRef `json:"destinationRule,omitempty"`
}

// IstioRetries is the retry policy of the route Sluice owns.
type IstioRetries struct {
	// Attempts is how many retries a request gets.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Attempts int32 `json:"attempts"`
	// PerTryTimeout bounds each attempt.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	PerTryTimeout *metav1.Duration `json:"perTryTimeout,omitempty"`
	// RetryOn lists the conditions retried on, as Envoy names them
	// (comma-separated, for example 5xx,connect-failure).
	// +kubebuilder:validation:MaxLength=512
	// +optional
	RetryOn string `json:"retryOn,omitempty"`
}

// IstioVirtualServiceRef names a VirtualService in the Canary's namespace
// and the HTTP routes of it that Sluice splits.
type IstioVirtualServiceRef struct {
	// Name of the VirtualService.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Routes are the names of the HTTP routes (spec.http[].name) to split.
	// Each must send only to the DestinationRule's host, to a destination
	// with subset stable and one with subset canary (write weights 100
	// and 0): Sluice sets those two weights.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	Routes []string `json:"routes"`
}

// IstioDestinationRuleRef names a DestinationRule in the Canary's
// namespace.
type IstioDestinationRuleRef struct {
	// Name of the DestinationRule.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// NGINXRouter routes through ingress-nginx canary annotations.
type NGINXRouter struct {
	// Ingress is your Ingress, in the Canary's namespace, whose backends
	// are the apex Service. Sluice never writes it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=246
	Ingress string `json:"ingress"`
}

// ConsulRouter splits one Consul service between a stable and a canary
// subset.
type ConsulRouter struct {
	// ServiceName is the Consul service, and the name of the
	// ServiceResolver, ServiceSplitter and ServiceRouter (config entries
	// are named after their service). Default: the apex Service's name.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ServiceName string `json:"serviceName,omitempty"`
	// MetaKey is the service-meta key that tells the subsets apart: Sluice
	// sets the pod-template annotation consul.hashicorp.com/service-meta-<key>
	// to the pod template's revision on the primary and the canary.
	// Default version.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	// +optional
	MetaKey string `json:"metaKey,omitempty"`
	// StableSubset names the resolver's subset of the primary's pods.
	// Default stable.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	StableSubset string `json:"stableSubset,omitempty"`
	// CanarySubset names the resolver's subset of the canary's pods.
	// Default canary.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	CanarySubset string `json:"canarySubset,omitempty"`
	// WaitForSync: a step counts as applied only once consul-k8s reports
	// each config entry Synced to Consul after Sluice's last write. Set
	// false where no consul-k8s controller runs. Default true.
	// +optional
	WaitForSync *bool `json:"waitForSync,omitempty"`
	// RegexMaxProgramSize is the largest RE2 program your Envoy proxies
	// accept for a header regex (their runtime key
	// re2.max_program_size.error_level). Sluice holds a release whose
	// header regex surely compiles to more, since Envoy would refuse the
	// route while Consul reports it synced. Default 100, Envoy's default.
	// +kubebuilder:validation:Minimum=1
	// +optional
	RegexMaxProgramSize *int32 `json:"regexMaxProgramSize,omitempty"`
}

// AmbassadorRouter routes through Emissary-ingress Mappings.
type AmbassadorRouter struct {
	// Mappings are the stable Mappings, in the Canary's namespace, whose
	// service is the apex Service. They must not carry a weight themselves.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Mappings []string `json:"mappings"`
	// RegexMaxProgramSize is the largest RE2 program Emissary lets Envoy
	// accept for a header regex: its Module's regex_max_size. Sluice holds
	// a release whose header regex surely compiles to more, since Envoy
	// would refuse the route. Default 200, Emissary's default.
	// +kubebuilder:validation:Minimum=1
	// +optional
	RegexMaxProgramSize *int32 `json:"regexMaxProgramSize,omitempty"`
}

// TraefikRouter routes through Traefik.
type TraefikRouter struct {
	// IngressRoute, when set, is your IngressRoute whose route Sluice
	// splits in place: it sets the weight of the entry for the apex Service
	// (which must be there) and adds the canary Service's entry while a
	// release runs; it changes nothing else. Without it, Sluice owns a
	// weighted TraefikService named after the Canary: reference it from
	// your IngressRoute with kind TraefikService.
	// +optional
	IngressRoute *TraefikIngressRouteRef `json:"ingressRoute,omitempty"`
	// CanaryMiddlewares are Middlewares applied to the requests a header
	// route (setHeaderRoute step) sends to the canary, after the
	// middlewares of the route it narrows. Sluice references them and never
	// creates them: each must exist, or the release holds where it is and
	// says which one is missing.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	CanaryMiddlewares []TraefikMiddlewareRef `json:"canaryMiddlewares,omitempty"`
	// RuleSyntax of the header route's rule: v3 (Header, HeaderRegexp) or
	// v2 (Headers, HeadersRegexp). Default: the route's own syntax field
	// when it has one, else v2 on traefik.containo.us and v3 on
	// traefik.io. Traefik v2.10 and v2.11 also serve traefik.io: set v2
	// there.
	// +kubebuilder:validation:Enum=v2;v3
	// +optional
	RuleSyntax string `json:"ruleSyntax,omitempty"`
	// NativeLB, in TraefikService mode, has Traefik send to each Service's
	// ClusterIP rather than its endpoints (nativeLB on each service Sluice
	// lists). Set it when the provider runs with nativeLBByDefault: Traefik
	// (v3.6) does not apply that default to TraefikServices.
	// +optional
	NativeLB *bool `json:"nativeLB,omitempty"`
}

// TraefikMiddlewareRef names a Traefik Middleware.
type TraefikMiddlewareRef struct {
	// Name of the Middleware.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the Middleware. Default: the Canary's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// TraefikIngressRouteRef names an IngressRoute in the Canary's namespace
// and one of its routes.
type TraefikIngressRouteRef struct {
	// Name of the IngressRoute.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Match is the match rule of the route to split, exactly as written in
	// the IngressRoute; optional when it has a single route.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Match string `json:"match,omitempty"`
}

// GatewayAPIRouter is the generated HTTPRoute's routing, apart from backends.
type GatewayAPIRouter struct {
	// ParentRefs are what the route attaches to: Gateways for traffic into
	// the cluster, or, for traffic between services in a mesh that
	// implements the Gateway API for meshes (GAMMA: Istio, Linkerd,
	// Cilium, ...), a Service (group "", kind Service): usually the
	// Canary's apex Service, whose callers are then split between its
	// -primary and -canary Services. A Service parent in the Canary's own
	// namespace routes every caller of it; one in another namespace only
	// the callers in the Canary's namespace (a consumer route).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	ParentRefs []gwv1.ParentReference `json:"parentRefs"`
	// Hostnames the route answers for.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Hostnames []gwv1.Hostname `json:"hostnames,omitempty"`
	// Matches select the requests the route carries. Default: every path.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Matches []gwv1.HTTPRouteMatch `json:"matches,omitempty"`
	// Filters applied to every request of the route.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Filters []gwv1.HTTPRouteFilter `json:"filters,omitempty"`
	// Timeouts of the route's rule.
	// +optional
	Timeouts *gwv1.HTTPRouteTimeouts `json:"timeouts,omitempty"`
}

// Strategy lists the release's steps, or Flagger's shorthand that expands
// into them: for each weight w of stepWeights (or stepWeight, 2×stepWeight,
// … up to maxWeight), "setWeight w" then "pause interval".
//
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeight) || !has(self.stepWeights)",message="spec.strategy: set stepWeight or stepWeights, not both"
// +kubebuilder:validation:XValidation:rule="(has(self.steps) && size(self.steps) > 0) || has(self.stepWeight) || has(self.stepWeights) || has(self.blueGreen)",message="spec.strategy: give steps, stepWeight/stepWeights with interval, or blueGreen"
// +kubebuilder:validation:XValidation:rule="!has(self.blueGreen) || (!(has(self.steps) && size(self.steps) > 0) && !has(self.stepWeight) && !has(self.stepWeights) && !has(self.maxWeight) && !has(self.interval) && !has(self.sessionAffinity))",message="spec.strategy.blueGreen switches all traffic at once: it excludes steps, stepWeight, stepWeights, maxWeight, interval and sessionAffinity; use either blueGreen or a canary walk"
// +kubebuilder:validation:XValidation:rule="!(has(self.stepWeight) || has(self.stepWeights)) || has(self.interval)",message="spec.strategy.interval is required with stepWeight/stepWeights (how long each weight is held)"
// +kubebuilder:validation:XValidation:rule="!has(self.steps) || self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",message="spec.strategy.steps: setWeight values must increase from step to step"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeights) || self.stepWeights.isSorted()",message="spec.strategy.stepWeights must increase"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeight) || self.stepWeight <= (has(self.maxWeight) ? self.maxWeight : 50)",message="spec.strategy.stepWeight must not exceed maxWeight (default 50), or the release would have no steps"
type Strategy struct {
	// Steps run in order; each has exactly one action.
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	Steps []Step `json:"steps,omitempty"`
	// StepWeight is the shorthand's increment (percent).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	StepWeight *int32 `json:"stepWeight,omitempty"`
	// StepWeights is the shorthand's explicit list of weights (percent).
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	// +listType=atomic
	// +optional
	StepWeights []int32 `json:"stepWeights,omitempty"`
	// MaxWeight caps the shorthand's weights (percent). Default 50 with
	// stepWeight; the last of stepWeights otherwise.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxWeight *int32 `json:"maxWeight,omitempty"`
	// Interval is how long the shorthand holds each weight.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// SessionAffinity keeps a client the canary has answered on the canary
	// for the rest of the release: the canary's responses set a cookie,
	// and the route sends the requests carrying it to the canary whatever
	// the weight. Clients without it are split by the weight.
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
	// BlueGreen releases the new revision at full size behind the preview
	// Service (<service>-canary, and previewService when set) with no
	// production traffic; check rounds and webhooks run against it; then
	// all traffic switches to it at once. The old copy keeps running at
	// full size for scaleDownDelay, while post-promotion check rounds can
	// still switch back; then the primary takes the new revision and the
	// traffic, and the canary scales to zero. It excludes the canary
	// walk's fields (steps, stepWeight, stepWeights).
	// +optional
	BlueGreen *BlueGreen `json:"blueGreen,omitempty"`
}

// BlueGreen is a release that switches all traffic at once (Argo
// Rollouts' blueGreen strategy; Flagger's blue/green analysis).
//
// +kubebuilder:validation:XValidation:rule="!has(self.autoPromotionSeconds) || !has(self.autoPromotionEnabled) || self.autoPromotionEnabled",message="spec.strategy.blueGreen.autoPromotionSeconds has no effect with autoPromotionEnabled: false (the switch waits for kubectl sluice promote); remove one"
type BlueGreen struct {
	// PreviewService, when set, names one more Service Sluice keeps in
	// front of the new revision's pods (beside <service>-canary), for
	// tests and people to reach the preview by a name of their choosing.
	// It must not be the apex Service or its -primary or -canary Service.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	PreviewService string `json:"previewService,omitempty"`
	// PreviewReplicaCount is how many replicas the new revision runs
	// before the switch; it is scaled to full size (and must be Ready at
	// the canary's threshold) before any traffic moves. Default: full
	// size from the start.
	// +kubebuilder:validation:Minimum=1
	// +optional
	PreviewReplicaCount *int32 `json:"previewReplicaCount,omitempty"`
	// AutoPromotionEnabled: false holds the preview (phase
	// WaitingPromotion) until `kubectl sluice promote`. Default true: the
	// switch follows once the preview is Ready, autoPromotionSeconds
	// have passed and, with analysis, a check round passed.
	// +optional
	AutoPromotionEnabled *bool `json:"autoPromotionEnabled,omitempty"`
	// AutoPromotionSeconds is how long the preview runs before the switch
	// (check rounds run every spec.analysis.interval meanwhile). Default 0.
	// +kubebuilder:validation:Minimum=0
	// +optional
	AutoPromotionSeconds *int32 `json:"autoPromotionSeconds,omitempty"`
	// ScaleDownDelay is how long, after the switch, the old copy keeps
	// running at full size while post-promotion check rounds run: a
	// failed one (or an abort) switches all traffic back to it. Default
	// 30s; 0s goes on as soon as the switch is carried (and, with
	// analysis, a round passed).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	ScaleDownDelay *metav1.Duration `json:"scaleDownDelay,omitempty"`
}

// SessionAffinity is the cookie that keeps a client on the canary.
type SessionAffinity struct {
	// CookieName names the cookie. Default sluice-canary.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+$`
	// +optional
	CookieName string `json:"cookieName,omitempty"`
	// MaxAge is how long a client keeps the cookie. Default 24h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`
}

// Step is one action of a release.
//
// +kubebuilder:validation:XValidation:rule="[has(self.setWeight), has(self.pause), has(self.setHeaderRoute), has(self.setMirror)].filter(x, x).size() == 1",message="spec.strategy.steps[]: each step has exactly one action: setWeight, pause, setHeaderRoute or setMirror"
type Step struct {
	// SetWeight sends this percentage of traffic to the canary.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	SetWeight *int32 `json:"setWeight,omitempty"`
	// Pause holds the current weight for a duration, or, without one, until
	// the release is promoted (`kubectl sluice promote`).
	// +optional
	Pause *PauseStep `json:"pause,omitempty"`
	// SetHeaderRoute sends every request matching these headers to the
	// canary (an A/B step), from this step until the release ends, on top
	// of the weight. Every router supports it.
	// +optional
	SetHeaderRoute *HeaderRoute `json:"setHeaderRoute,omitempty"`
	// SetMirror copies a percentage of the requests the route carries to
	// the canary, whose answers are discarded (the client gets the
	// primary's or the weighted split's answer), from this step until the
	// release ends or another setMirror changes it (percent 0 stops it).
	// Supported by the gatewayAPI router (a RequestMirror filter), the
	// ambassador router (a shadow Mapping), the traefik router in
	// TraefikService mode (a mirroring TraefikService) and the istio
	// router (the route's mirror and mirrorPercentage); not by consul.
	// +optional
	SetMirror *MirrorStep `json:"setMirror,omitempty"`
}

// MirrorStep is the share of requests copied to the canary.
type MirrorStep struct {
	// Percent of requests copied to the canary (0 stops mirroring).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
}

// HeaderRoute is a set of header matches and a cookie; a request matching
// all of them goes to the canary.
//
// +kubebuilder:validation:XValidation:rule="(has(self.match) && size(self.match) > 0) || has(self.cookie)",message="setHeaderRoute: give at least one match, or a cookie"
type HeaderRoute struct {
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Match []HeaderMatch `json:"match,omitempty"`
	// Cookie a request must carry, with this value: ingress-nginx's
	// canary-by-cookie (with the value always); the other routers match
	// the Cookie header (HeaderRoute.Headers).
	// +optional
	Cookie *CookieMatch `json:"cookie,omitempty"`
}

// CookieMatch matches one cookie of a request by its exact value.
type CookieMatch struct {
	// Name of the cookie.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+$`
	Name string `json:"name"`
	// Value the cookie must have. Default always (ingress-nginx's value
	// for "send to the canary").
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.~+/=-]+$`
	// +optional
	Value string `json:"value,omitempty"`
}

// HeaderMatch matches one request header, exactly or by a regular
// expression (RE2).
//
// +kubebuilder:validation:XValidation:rule="has(self.exact) != has(self.regex)",message="setHeaderRoute.match[]: give exactly one of exact or regex"
type HeaderMatch struct {
	// Name of the header (case-insensitive).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	Name string `json:"name"`
	// Exact value the header must have.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Exact *string `json:"exact,omitempty"`
	// Regex the whole header value must match, in RE2 syntax (Go's
	// regexp, which Traefik uses; Envoy-based routers use Google's RE2,
	// the same syntax). Perl-only constructs (lookarounds, backreferences)
	// are refused, and so is the (?<name>re) form of a named group, which
	// older builds of Traefik and Envoy do not parse.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="''.matches(self) || !''.matches(self)",message="must be a regular expression in RE2 syntax"
	// +kubebuilder:validation:XValidation:rule=`!self.matches(r'^(?:[^\\\[]|\\.|\[\^?\]?(?:[^\\\]]|\\.)*\])*\(\?<')`,message="a named group written (?<name>re) is refused: Go before 1.22 and RE2 before 2023 (older Traefik and Envoy builds) do not parse it; write (?P<name>re) or (?:re) (a literal \"(?<\" can be written \\(\\?<)"
	// +optional
	Regex *string `json:"regex,omitempty"`
}

// PauseStep holds a release.
type PauseStep struct {
	// Duration of the pause; empty means until promoted.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`
}

// Analysis is the release's checks.
//
// +kubebuilder:validation:XValidation:rule="!has(self.metrics) || !has(self.webhooks) || self.metrics.all(m, self.webhooks.all(w, w.name != m.name))",message="spec.analysis: a webhook and a metric share a name; names must be unique across metrics and webhooks"
type Analysis struct {
	// Interval between check rounds. A round also runs at the start of
	// every step, and a step is left only after a round that started in it
	// passed. Default 1m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Threshold is the number of failed rounds that rolls the release
	// back. Default 5.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Threshold *int32 `json:"threshold,omitempty"`
	// Metrics are checked every round. A metric whose query errors, times
	// out or returns no value fails the round.
	// +kubebuilder:validation:MaxItems=20
	// +listType=map
	// +listMapKey=name
	// +optional
	Metrics []MetricCheck `json:"metrics,omitempty"`
	// Webhooks are called at points of a release: gates that hold it until
	// they answer 2xx, checks that count like metrics, a rollback trigger,
	// and notifications. See WebhookType for when each type runs.
	// +kubebuilder:validation:MaxItems=20
	// +listType=map
	// +listMapKey=name
	// +optional
	Webhooks []Webhook `json:"webhooks,omitempty"`
	// Judge scores the metrics that compare the canary with the primary
	// (metrics[].compare): each round, the share of those metrics (by
	// weight) in which the canary is no worse than the primary, 0 to 100.
	// A score of at least passScore passes the round, at least
	// marginalScore holds the step without counting a failed round (a
	// round later decides, or a person promotes or aborts), below it fails
	// the round.
	// +optional
	Judge *Judge `json:"judge,omitempty"`
	// Alerts post the Canary's events to chat or webhook destinations
	// (AlertProviders), filtered by severity.
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	// +optional
	Alerts []Alert `json:"alerts,omitempty"`
}

// Judge sets the statistical judge's thresholds.
//
// +kubebuilder:validation:XValidation:rule="(has(self.marginalScore) ? self.marginalScore : 75) <= (has(self.passScore) ? self.passScore : 95)",message="spec.analysis.judge: marginalScore must not be above passScore"
type Judge struct {
	// PassScore is the lowest passing score. Default 95.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	PassScore *int32 `json:"passScore,omitempty"`
	// MarginalScore is the lowest score that does not fail the round.
	// Default 75.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MarginalScore *int32 `json:"marginalScore,omitempty"`
	// Confidence of the test that the canary differs from the primary, in
	// percent: a metric is worse only when the Mann-Whitney U test says so
	// at this confidence (one-sided; split over both sides for Either).
	// Default 99.
	// +kubebuilder:validation:Minimum=80
	// +kubebuilder:validation:Maximum=99
	// +optional
	Confidence *int32 `json:"confidence,omitempty"`
}

// Comparison judges a metric by comparing the canary's samples with the
// primary's over the round instead of against a fixed threshold.
type Comparison struct {
	// Direction is the way that is worse: Increase (latency, errors),
	// Decrease (success rate, throughput) or Either. Default Either.
	// +kubebuilder:validation:Enum=Increase;Decrease;Either
	// +optional
	Direction string `json:"direction,omitempty"`
	// TolerancePercent is the change (relative to the primary's median)
	// within which the canary is no worse even when the test finds a
	// difference: 10 lets the canary be up to 10% slower. Default 5.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	TolerancePercent *int32 `json:"tolerancePercent,omitempty"`
	// MinSamples is the fewest samples of each copy the metric is judged
	// on; with fewer it is "not enough data", which never passes: the
	// metric is left out of the score, and when it is critical or half
	// the weight lacks data the round is inconclusive (the step waits).
	// Default 20.
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=10000
	// +optional
	MinSamples *int32 `json:"minSamples,omitempty"`
	// SampleInterval is the step between samples over the metric's
	// window: the query is asked as a range query, once per copy. Default:
	// the window divided by 30 (at least 1s).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	SampleInterval *metav1.Duration `json:"sampleInterval,omitempty"`
	// Weight of the metric in the score. Default 1.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Weight *int32 `json:"weight,omitempty"`
	// Critical: a canary worse in this metric scores 0, whatever the
	// others say.
	// +optional
	Critical bool `json:"critical,omitempty"`
}

// WebhookType says when a webhook is called and what its answer means.
// +kubebuilder:validation:Enum=confirm-rollout;pre-rollout;rollout;confirm-traffic-increase;confirm-promotion;post-rollout;rollback;event
type WebhookType string

// Webhook types. A gate holds the release until every hook of its type
// answers 2xx, asking again every analysis interval; gates never count
// toward the progress deadline.
const (
	// WebhookConfirmRollout: a gate before a new revision's release starts;
	// while it is closed the Canary is Waiting and the canary is not scaled up.
	WebhookConfirmRollout WebhookType = "confirm-rollout"
	// WebhookPreRollout: called once the canary is Ready, before it gets
	// traffic. A non-2xx answer is a failed check (toward the threshold)
	// and it is called again next interval.
	WebhookPreRollout WebhookType = "pre-rollout"
	// WebhookRollout: called in every check round, like a metric; a non-2xx
	// answer fails the round.
	WebhookRollout WebhookType = "rollout"
	// WebhookConfirmTrafficIncrease: a gate before each step that raises
	// the canary's weight.
	WebhookConfirmTrafficIncrease WebhookType = "confirm-traffic-increase"
	// WebhookConfirmPromotion: a gate before the primary is promoted; check
	// rounds go on (and can roll back) while it is closed.
	WebhookConfirmPromotion WebhookType = "confirm-promotion"
	// WebhookPostRollout: called once when a release ends, promoted or
	// rolled back; a failure is reported as a Warning Event only.
	WebhookPostRollout WebhookType = "post-rollout"
	// WebhookRollback: called in every check round; a 2xx answer rolls the
	// release back.
	WebhookRollback WebhookType = "rollback"
	// WebhookEvent: every Event Sluice records on the Canary is posted to it.
	WebhookEvent WebhookType = "event"
)

// WebhookTypes are every webhook type, in the order above.
func WebhookTypes() []WebhookType {
	return []WebhookType{WebhookConfirmRollout, WebhookPreRollout, WebhookRollout, WebhookConfirmTrafficIncrease,
		WebhookConfirmPromotion, WebhookPostRollout, WebhookRollback, WebhookEvent}
}

// Webhook is an HTTP endpoint Sluice POSTs a JSON payload to: type, name,
// namespace, revision, phase, weight, step, metadata and a timestamp (and
// the event, for event hooks).
//
// +kubebuilder:validation:XValidation:rule="isURL(self.url) && (self.url.startsWith('http://') || self.url.startsWith('https://'))",message="spec.analysis.webhooks[].url must be an absolute http:// or https:// URL"
type Webhook struct {
	// Name of the hook, unique among the Canary's metrics and webhooks.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Type says when the hook is called. Default rollout.
	// +kubebuilder:default=rollout
	// +optional
	Type WebhookType `json:"type,omitempty"`
	// URL the payload is POSTed to.
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url"`
	// Timeout of each attempt. Default 10s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Retries after a failed attempt (no answer, 429 or 5xx; any other
	// answer is final). Default 2.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Retries *int32 `json:"retries,omitempty"`
	// Metadata is passed in the payload as is.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
	// SecretRef names a Secret in the Canary's namespace whose key signs
	// each request: the X-Sluice-Signature header carries
	// "sha256=" + hex(HMAC-SHA256(key, body)).
	// +optional
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`
}

// SecretKeyRef names a key of a Secret in the Canary's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key in the Secret's data. Default "key".
	// +optional
	Key string `json:"key,omitempty"`
}

// MetricCheck is one metric and how its value is judged.
//
// +kubebuilder:validation:XValidation:rule="has(self.templateRef) || self.name in ['request-success-rate', 'request-duration']",message="spec.analysis.metrics[]: without templateRef, name must be a builtin metric: request-success-rate or request-duration"
// +kubebuilder:validation:XValidation:rule="self.name != 'judge'",message="spec.analysis.metrics[].name: judge is the statistical judge's entry in status.metrics; pick another name"
// +kubebuilder:validation:XValidation:rule="!has(self.compare) || has(self.templateRef)",message="spec.analysis.metrics[].compare needs a templateRef: a MetricTemplate whose query selects one copy with {{ target }} or {{ copy }}"
// +kubebuilder:validation:XValidation:rule="!has(self.compare) || !(has(self.thresholdRange) || has(self.successCondition) || has(self.failureCondition))",message="spec.analysis.metrics[]: compare judges against the primary; drop thresholdRange, successCondition and failureCondition (or use another metric for a fixed threshold)"
// +kubebuilder:validation:XValidation:rule="has(self.thresholdRange) || has(self.successCondition) || has(self.failureCondition) || has(self.compare)",message="spec.analysis.metrics[]: give thresholdRange, successCondition, failureCondition or compare, or nothing could fail the check"
type MetricCheck struct {
	// Name of the check; a builtin metric's name when templateRef is empty.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// TemplateRef names a MetricTemplate (namespace default: the Canary's).
	// +optional
	TemplateRef *TemplateRef `json:"templateRef,omitempty"`
	// Interval is the query's window ({{ interval }}). Default:
	// spec.analysis.interval.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// ThresholdRange bounds the value (inclusive).
	// +optional
	ThresholdRange *ThresholdRange `json:"thresholdRange,omitempty"`
	// SuccessCondition is an expr-lang expression over `result` that must
	// be true, e.g. "result >= 99".
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	SuccessCondition string `json:"successCondition,omitempty"`
	// FailureCondition is an expr-lang expression over `result` that must
	// be false, e.g. "result > 500".
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	FailureCondition string `json:"failureCondition,omitempty"`
	// TemplateVariables are available to the query as {{ .name }}.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	TemplateVariables map[string]string `json:"templateVariables,omitempty"`
	// Compare judges the metric by comparing the canary with the primary
	// (spec.analysis.judge) instead of a threshold. The template's query
	// is asked for each copy over the window, with {{ target }} the copy's
	// Deployment (<target> or <target>-primary) and {{ copy }} "canary"
	// or "primary".
	// +optional
	Compare *Comparison `json:"compare,omitempty"`
}

// TemplateRef names a MetricTemplate.
type TemplateRef struct {
	// Name of the MetricTemplate.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the template; default the Canary's.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ThresholdRange bounds a value.
//
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="thresholdRange: give min, max or both"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="thresholdRange: min must not exceed max"
type ThresholdRange struct {
	// Min is the lowest passing value.
	// +optional
	Min *float64 `json:"min,omitempty"`
	// Max is the highest passing value.
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// MetricStatus is a metric's result in the last round.
type MetricStatus struct {
	// Name of the metric or rollout webhook.
	Name string `json:"name"`
	// Value is the last value, when the query answered.
	// +optional
	Value string `json:"value,omitempty"`
	// Passed is whether the last round's check passed.
	Passed bool `json:"passed"`
	// Message says why it failed.
	// +optional
	Message string `json:"message,omitempty"`
	// Webhook is true for a rollout webhook's result.
	// +optional
	Webhook bool `json:"webhook,omitempty"`
	// Skipped is true when the check was not judged this round (Passed is
	// then true, and Message says why): a builtin metric in a blue/green
	// preview, which the router's traffic does not reach.
	// +optional
	Skipped bool `json:"skipped,omitempty"`
	// Inconclusive is true when the check neither passed nor failed: the
	// judge's marginal score. The step is not left, and the round is not
	// counted as failed.
	// +optional
	Inconclusive bool `json:"inconclusive,omitempty"`
}

// Judge verdicts: of a round's score, and of one metric.
const (
	VerdictPass     = "Pass"
	VerdictMarginal = "Marginal"
	VerdictFail     = "Fail"
	// VerdictHigh and VerdictLow: the canary is worse, higher or lower
	// than the primary.
	VerdictHigh = "High"
	VerdictLow  = "Low"
	// VerdictNoData: fewer samples than minSamples, or none; never a pass.
	VerdictNoData = "NoData"
	// VerdictError: the samples could not be read.
	VerdictError = "Error"
)

// JudgeStatus is the statistical judge's last round.
type JudgeStatus struct {
	// Round is the check round judged.
	Round int64 `json:"round"`
	// Score is 0 to 100.
	Score string `json:"score"`
	// Verdict is Pass, Marginal, Fail, or NoData (not enough samples to
	// judge: the step waits for a round with them).
	Verdict string `json:"verdict"`
	// Metrics are each compared metric's verdict.
	// +listType=map
	// +listMapKey=name
	// +optional
	Metrics []ComparisonStatus `json:"metrics,omitempty"`
}

// ComparisonStatus is one metric's comparison of the canary with the
// primary.
type ComparisonStatus struct {
	// Name of the metric.
	Name string `json:"name"`
	// Verdict is Pass, High, Low, NoData or Error.
	Verdict string `json:"verdict"`
	// CanarySamples and PrimarySamples are the sample sizes.
	// +optional
	CanarySamples int32 `json:"canarySamples,omitempty"`
	// +optional
	PrimarySamples int32 `json:"primarySamples,omitempty"`
	// CanaryMedian and PrimaryMedian are the samples' medians.
	// +optional
	CanaryMedian string `json:"canaryMedian,omitempty"`
	// +optional
	PrimaryMedian string `json:"primaryMedian,omitempty"`
	// Shift is the estimated change of the canary from the primary
	// (Hodges-Lehmann), relative to the primary's median, e.g. "+23.4%".
	// +optional
	Shift string `json:"shift,omitempty"`
	// PValue of the Mann-Whitney U test in the worse direction.
	// +optional
	PValue string `json:"pValue,omitempty"`
	// Message says why, in words.
	// +optional
	Message string `json:"message,omitempty"`
}

// GateStatus is the webhook gate a release waits on, or passed last.
type GateStatus struct {
	// Type of the gate's hooks.
	Type WebhookType `json:"type"`
	// Point is what the gate guards: "rollout", "step N" or "promotion".
	Point string `json:"point"`
	// Open is true once every hook of the type answered 2xx.
	Open bool `json:"open"`
	// Message is the hooks' last answer when the gate is closed.
	// +optional
	Message string `json:"message,omitempty"`
	// LastAnswer is when the hooks last answered.
	// +optional
	LastAnswer *metav1.Time `json:"lastAnswer,omitempty"`
}

// CanaryPhase is where a Canary is in its life. The values are Flagger's,
// so scripts waiting on `.status.phase` keep working.
// +kubebuilder:validation:Enum=Initializing;Initialized;Waiting;Progressing;Paused;WaitingPromotion;Promoting;Finalising;Succeeded;Failed
type CanaryPhase string

// Phases.
const (
	// PhaseInitializing: the primary copy and Services are being created
	// and traffic moved onto them.
	PhaseInitializing CanaryPhase = "Initializing"
	// PhaseInitialized: the primary serves all traffic; no release ran yet.
	PhaseInitialized CanaryPhase = "Initialized"
	// PhaseWaiting: a new revision waits for its confirm-rollout webhooks
	// before the release starts.
	PhaseWaiting CanaryPhase = "Waiting"
	// PhaseProgressing: a release is walking its steps.
	PhaseProgressing CanaryPhase = "Progressing"
	// PhasePaused: a release is held by spec.paused.
	PhasePaused CanaryPhase = "Paused"
	// PhaseWaitingPromotion: a release is held by a pause step without a
	// duration until it is promoted.
	PhaseWaitingPromotion CanaryPhase = "WaitingPromotion"
	// PhasePromoting: the primary is being updated to the canary's revision.
	PhasePromoting CanaryPhase = "Promoting"
	// PhaseFinalising: traffic returns to the updated primary and the
	// canary is scaled down.
	PhaseFinalising CanaryPhase = "Finalising"
	// PhaseSucceeded: the last release was promoted.
	PhaseSucceeded CanaryPhase = "Succeeded"
	// PhaseFailed: the last release was rolled back.
	PhaseFailed CanaryPhase = "Failed"
)

// InRelease says whether a release is under way in the phase: from
// Waiting (for its confirm-rollout gate) to Finalising.
func (p CanaryPhase) InRelease() bool {
	switch p {
	case PhaseWaiting, PhaseProgressing, PhasePaused, PhaseWaitingPromotion, PhasePromoting, PhaseFinalising:
		return true
	}
	return false
}

// Condition types. Ready, Stalled and Reconciling follow kstatus, so Flux
// and Argo CD read a Canary's health right; Progressing mirrors Reconciling
// under the name Deployment users know.
const (
	ConditionReady       = "Ready"
	ConditionProgressing = "Progressing"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	// ConditionDrifted is True when the primary no longer matches the
	// record of the revision it was promoted at (edited or scaled by hand).
	ConditionDrifted = "Drifted"
)

// Request annotation: a one-shot action on a release, written by
// `kubectl sluice` (or by hand) as "<action>" or "<action>/<id>". Sluice
// acts on a given value once and records it in status.lastHandledRequest;
// a request the phase does not allow is recorded with a RequestIgnored
// Warning Event.
const (
	RequestAnnotation  = "sluice.dev/request"
	RequestPromote     = "promote"      // leave the current step now
	RequestPromoteFull = "promote-full" // skip every remaining step
	RequestAbort       = "abort"        // roll back now
	RequestRetry       = "retry"        // run a failed revision again
)

// CanaryStatus is what Sluice observed and did.
type CanaryStatus struct {
	// ObservedGeneration is the generation last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase of the Canary.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`
	// Reason is a CamelCase word for why the Canary is in its phase.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message explains the phase in a sentence, naming the cause.
	// +optional
	Message string `json:"message,omitempty"`
	// LastTransitionTime is when the phase last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`

	// StableRevision is the revision the primary runs.
	// +optional
	StableRevision string `json:"stableRevision,omitempty"`
	// CanaryRevision is the revision of the current (or last) release.
	// +optional
	CanaryRevision string `json:"canaryRevision,omitempty"`

	// CurrentStep is the index of the step being run.
	// +optional
	CurrentStep int32 `json:"currentStep"`
	// Steps is the number of steps of the release (after shorthand expansion).
	// +optional
	Steps int32 `json:"steps,omitempty"`
	// StepStartedAt is when the current step started.
	// +optional
	StepStartedAt *Timestamp `json:"stepStartedAt,omitempty"`
	// LastProgressTime is when the release last made progress; the
	// progress deadline counts from it.
	// +optional
	LastProgressTime *metav1.Time `json:"lastProgressTime,omitempty"`

	// CanaryWeight is the canary's share (percent) Sluice set.
	// +optional
	CanaryWeight int32 `json:"canaryWeight"`
	// ObservedCanaryWeight is the canary's share read back from the router.
	// +optional
	ObservedCanaryWeight *int32 `json:"observedCanaryWeight,omitempty"`
	// EndpointShare is set with no router: how the apex Service's Ready
	// endpoints split between the copies while a release has both in
	// them. The canary weight is then approximated: requests are spread
	// evenly over the endpoints, so the canary's real share is
	// canary/(canary+primary), as close to canaryWeight as the Ready
	// replica counts allow.
	// +optional
	EndpointShare *EndpointShare `json:"endpointShare,omitempty"`
	// RouteSettling is set while Sluice gives the proxy time to load a
	// route the router has just been seen to carry, with routers that
	// cannot report when their proxies have loaded it: a step counts as
	// applied, and a copy is scaled down, only once that time has passed.
	// Sluice's own bookkeeping, nothing to set or act on: it is in the
	// status because Sluice keeps no state between reconciles, so a
	// restarted controller resumes the wait rather than starting over.
	// +optional
	RouteSettling *RouteSettling `json:"routeSettling,omitempty"`

	// FailedChecks counts the failed check rounds of the current release;
	// spec.analysis.threshold of them roll it back.
	// +optional
	FailedChecks int32 `json:"failedChecks,omitempty"`
	// CheckRound is the number of the last check round started, counted
	// over the Canary's life; Events name rounds by it. Sluice's own
	// bookkeeping, like checkedRound and stepCheckRound, nothing to set or
	// act on: it is in the status because Sluice keeps no state between
	// reconciles, so a restarted controller neither repeats nor skips a
	// round.
	// +optional
	CheckRound int64 `json:"checkRound,omitempty"`
	// CheckedRound is the number of the last check round whose result was
	// counted (in failedChecks and metrics). Bookkeeping, like checkRound.
	// +optional
	CheckedRound int64 `json:"checkedRound,omitempty"`
	// StepCheckRound is what checkRound was when the current step started:
	// a step is left only after a round started in it passed.
	// Bookkeeping, like checkRound.
	// +optional
	StepCheckRound int64 `json:"stepCheckRound,omitempty"`
	// LastCheckTime is when the last round's result was counted; the next
	// round starts spec.analysis.interval later.
	// +optional
	LastCheckTime *Timestamp `json:"lastCheckTime,omitempty"`
	// Metrics are the last round's results.
	// +listType=map
	// +listMapKey=name
	// +optional
	Metrics []MetricStatus `json:"metrics,omitempty"`
	// Judge is the statistical judge's last round, with each compared
	// metric's verdict.
	// +optional
	Judge *JudgeStatus `json:"judge,omitempty"`

	// Gate is the webhook gate the release waits on, or passed last.
	// +optional
	Gate *GateStatus `json:"gate,omitempty"`
	// Verification is the promoted primary's verification against its
	// revision's record.
	// +optional
	Verification *VerificationStatus `json:"verification,omitempty"`

	// PreRolloutPassed is true once the release's pre-rollout webhooks
	// answered 2xx; they are not called again in this release.
	// +optional
	PreRolloutPassed bool `json:"preRolloutPassed,omitempty"`

	// LastHandledRequest is the last sluice.dev/request value acted on.
	// +optional
	LastHandledRequest string `json:"lastHandledRequest,omitempty"`

	// Conditions: Ready, Progressing, Reconciling, Stalled and Drifted.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Canary releases new revisions of a Deployment step by step.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=sluice
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="Step",type=integer,JSONPath=`.status.currentStep`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failedChecks`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Canary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CanarySpec   `json:"spec"`
	Status CanaryStatus `json:"status,omitempty"`
}

// CanaryList is a list of Canaries.
//
// +kubebuilder:object:root=true
type CanaryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Canary `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Canary{}, &CanaryList{})
}
