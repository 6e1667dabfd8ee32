package v1alpha1

// Reasons are the CamelCase words Sluice gives for what it does and why:
// in a Canary's status.reason, in its conditions' reason, and as the
// reason of the Events it records on the Canary (`kubectl describe`,
// `kubectl get events`, event webhooks). Scripts and alerts may match on
// them, so they do not change. Many are used in several places: a
// rollback's reason is status.reason, the Ready condition's reason and a
// Warning Event's reason at once.

// Reasons while the primary copy is set up (phase Initializing, then
// Initialized).
const (
	// ReasonInitializing: the primary copy and the Services are being
	// created.
	ReasonInitializing = "Initializing"
	// ReasonInitialized: the primary serves all traffic; no release has
	// run yet. Also a Normal Event.
	ReasonInitialized = "Initialized"
	// ReasonWaitingForPrimary: the primary copy is not Ready yet, so
	// traffic cannot move to it.
	ReasonWaitingForPrimary = "WaitingForPrimary"
	// ReasonTargetNotFound: spec.targetRef names no Deployment. The
	// Canary is Stalled; during a release it is rolled back.
	ReasonTargetNotFound = "TargetNotFound"
)

// Reasons when a release starts, or a new revision is held before it.
const (
	// ReasonNewRevision: the target runs a new revision, whose release
	// starts.
	ReasonNewRevision = "NewRevision"
	// ReasonRevisionChanged: the target changed again during a release;
	// the newer revision is released instead. Also a Normal Event.
	ReasonRevisionChanged = "RevisionChanged"
	// ReasonRetry: a failed revision is released again on request
	// (`kubectl sluice retry`).
	ReasonRetry = "Retry"
	// ReasonRolloutConfirmed: the confirm-rollout webhooks approved the
	// revision, whose release starts.
	ReasonRolloutConfirmed = "RolloutConfirmed"
	// ReasonWaitingForPrimaryRestore: a new revision waits until the
	// primary runs the stable revision again.
	ReasonWaitingForPrimaryRestore = "WaitingForPrimaryRestore"
	// ReasonRevertedToStable: the target went back to the stable revision,
	// so there is nothing to release. Also a Normal Event.
	ReasonRevertedToStable = "RevertedToStable"
)

// Reasons while a release walks its steps (phases Progressing, Paused,
// WaitingPromotion, Waiting).
const (
	// ReasonWaitingForCanary: the canary is not Ready yet, so no traffic
	// moves to it.
	ReasonWaitingForCanary = "WaitingForCanary"
	// ReasonSettingWeight: a step's weight is being written to the router
	// and read back.
	ReasonSettingWeight = "SettingWeight"
	// ReasonSettingHeaderRoute: a setHeaderRoute step is being written to
	// the router.
	ReasonSettingHeaderRoute = "SettingHeaderRoute"
	// ReasonSettingMirror: a setMirror step is being written to the router.
	ReasonSettingMirror = "SettingMirror"
	// ReasonPauseStep: a pause step with a duration holds the weight.
	ReasonPauseStep = "PauseStep"
	// ReasonWaitingForPromotion: a pause step without a duration holds
	// the release until it is promoted (`kubectl sluice promote`). Also a
	// Normal Event.
	ReasonWaitingForPromotion = "WaitingForPromotion"
	// ReasonWaitingForChecks: the step is over but waits for a check
	// round that started in it to pass.
	ReasonWaitingForChecks = "WaitingForChecks"
	// ReasonWaitingForGate: a webhook gate (confirm-rollout,
	// confirm-traffic-increase, confirm-promotion) is closed.
	ReasonWaitingForGate = "WaitingForGate"
	// ReasonPaused: spec.paused holds the release. Also a Normal Event.
	ReasonPaused = "Paused"
	// ReasonResumed: spec.paused was cleared. Also a Normal Event.
	ReasonResumed = "Resumed"
	// ReasonSuspended: spec.suspend is set; Sluice acts on nothing.
	ReasonSuspended = "Suspended"
)

// Reasons while a release is promoted (phases Promoting, Finalising,
// then Succeeded). Each is also a Normal Event.
const (
	// ReasonPromoting: the primary is being updated to the canary's
	// revision.
	ReasonPromoting = "Promoting"
	// ReasonFinalising: the primary runs the new revision; traffic moves
	// back to it.
	ReasonFinalising = "Finalising"
	// ReasonPromoted: the release is over and the primary runs its
	// revision.
	ReasonPromoted = "Promoted"
)

// Reasons a release was rolled back (phase Failed). Each is also a
// Warning Event.
const (
	// ReasonAborted: rolled back on request (`kubectl sluice abort`).
	ReasonAborted = "Aborted"
	// ReasonAnalysisFailed: spec.analysis.threshold check rounds failed.
	ReasonAnalysisFailed = "AnalysisFailed"
	// ReasonPreRolloutFailed: the pre-rollout webhooks failed
	// spec.analysis.threshold times.
	ReasonPreRolloutFailed = "PreRolloutFailed"
	// ReasonRollbackWebhook: a rollback webhook answered 2xx.
	ReasonRollbackWebhook = "RollbackWebhook"
	// ReasonProgressDeadlineExceeded: the release made no progress for
	// spec.progressDeadline.
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	// ReasonVerificationFailed: the promoted primary did not match its
	// revision's record within spec.verification.
	ReasonVerificationFailed = "VerificationFailed"
)

// Reasons of the Stalled condition: Sluice cannot go on until someone
// acts (besides a Failed release, whose Stalled reason is its rollback's,
// and a refused configuration, below).
const (
	// ReasonPrimaryNotReady: the primary is not Ready in a settled
	// Canary, or the promoted primary did not become Ready within
	// spec.progressDeadline.
	ReasonPrimaryNotReady = "PrimaryNotReady"
	// ReasonPromotionStalled: the route has not carried all traffic to
	// the canary within spec.progressDeadline of the promotion's start.
	ReasonPromotionStalled = "PromotionStalled"
	// ReasonNoStableRecord: the primary must be restored but there is no
	// CanaryRevision of the stable revision to restore it from.
	ReasonNoStableRecord = "NoStableRecord"
	// ReasonNotStalled is the Stalled condition's reason when it is False.
	ReasonNotStalled = "NotStalled"
	// ReasonUnknown is a condition's reason before Sluice has given one.
	ReasonUnknown = "Unknown"
)

// Reasons of a configuration Sluice refuses, or that the router or a
// backend check would refuse: the Canary is Stalled with the reason (one
// Warning Event when it starts or changes), nothing is written to the
// router until it is fixed, and the message names the field and the fix.
const (
	// ReasonUnsupportedSelector: the target's selector uses
	// matchExpressions, which cannot be rewritten for the primary copy.
	ReasonUnsupportedSelector = "UnsupportedSelector"
	// ReasonInvalidHeaderRegex: a setHeaderRoute regex the router's proxy
	// would refuse (too large a program for Envoy, or unsupported syntax).
	ReasonInvalidHeaderRegex = "InvalidHeaderRegex"
	// ReasonInvalidSuccessCondition: a metric's successCondition does not
	// compile.
	ReasonInvalidSuccessCondition = "InvalidSuccessCondition"
	// ReasonInvalidFailureCondition: a metric's failureCondition does not
	// compile.
	ReasonInvalidFailureCondition = "InvalidFailureCondition"
	// ReasonNoMetricsServer: a builtin metric, and the controller was
	// started without --metrics-server (the Helm value metricsServer), so
	// no round could be judged.
	ReasonNoMetricsServer = "NoMetricsServer"

	// ReasonBackendKindUnknown: a backendRef names a kind the cluster does
	// not serve.
	ReasonBackendKindUnknown = "BackendKindUnknown"
	// ReasonBackendKindForbidden: the controller may not list and watch a
	// backendRef's kind.
	ReasonBackendKindForbidden = "BackendKindForbidden"
	// ReasonBackendNotFound: a backendRef names an object that does not
	// exist.
	ReasonBackendNotFound = "BackendNotFound"
	// ReasonAutoscalerNotFound: spec.autoscalerRef names an autoscaler
	// that does not exist (or a kind the cluster does not serve).
	ReasonAutoscalerNotFound = "AutoscalerNotFound"
	// ReasonAutoscalerMismatch: spec.autoscalerRef names an autoscaler
	// that scales something other than the target Deployment.
	ReasonAutoscalerMismatch = "AutoscalerMismatch"
	// ReasonReferenceNotPermitted: a backendRef into another namespace
	// that no ReferenceGrant there allows.
	ReasonReferenceNotPermitted = "ReferenceNotPermitted"

	// ReasonMiddlewareNotFound: a Traefik canaryMiddlewares entry names no
	// Middleware.
	ReasonMiddlewareNotFound = "MiddlewareNotFound"
	// ReasonHeaderRouteBaseNotFound: Traefik has no route for a header
	// route to narrow (the IngressRoute, or one referencing the
	// TraefikService, is missing).
	ReasonHeaderRouteBaseNotFound = "HeaderRouteBaseNotFound"
	// ReasonMappingNotFound: an Emissary Mapping named in
	// spec.router.ambassador.mappings does not exist.
	ReasonMappingNotFound = "MappingNotFound"
	// ReasonMappingNotUsable: an Emissary Mapping cannot be split (it
	// carries a weight itself, or its service is not the apex Service).
	ReasonMappingNotUsable = "MappingNotUsable"
	// ReasonSplitterNotOwned: a Consul ServiceSplitter that is not
	// Sluice's splits to other subsets too.
	ReasonSplitterNotOwned = "SplitterNotOwned"
	// ReasonRouterNotOwned: a Consul ServiceRouter that is not Sluice's
	// stands where header steps need one of Sluice's.
	ReasonRouterNotOwned = "RouterNotOwned"
	// ReasonConnectServiceMismatch: the target's pod template does not
	// register its pods as the Consul service Sluice splits (its
	// connect-service annotation).
	ReasonConnectServiceMismatch = "ConnectServiceMismatch"
	// ReasonIngressNotFound: spec.router.nginx.ingress names no Ingress.
	ReasonIngressNotFound = "IngressNotFound"
	// ReasonIngressBackendMismatch: the Ingress spec.router.nginx.ingress
	// names sends to no backend that is the apex Service.
	ReasonIngressBackendMismatch = "IngressBackendMismatch"
	// ReasonVirtualServiceNotOwned: an Istio VirtualService that is not
	// the Canary's has the name of the one Sluice would own.
	ReasonVirtualServiceNotOwned = "VirtualServiceNotOwned"
	// ReasonDestinationRuleNotOwned: an Istio DestinationRule that is not
	// the Canary's has the name of one Sluice would own (with
	// spec.router.istio.trafficPolicy).
	ReasonDestinationRuleNotOwned = "DestinationRuleNotOwned"
	// ReasonVirtualServiceNotFound: spec.router.istio.virtualService names
	// no VirtualService.
	ReasonVirtualServiceNotFound = "VirtualServiceNotFound"
	// ReasonVirtualServiceRouteNotUsable: a route named in
	// spec.router.istio.virtualService.routes is missing or cannot be
	// split in place (not exactly a stable and a canary destination of
	// the DestinationRule's host, or a mirror of the user's own).
	ReasonVirtualServiceRouteNotUsable = "VirtualServiceRouteNotUsable"
	// ReasonDestinationRuleNotFound: spec.router.istio.destinationRule
	// names no DestinationRule.
	ReasonDestinationRuleNotFound = "DestinationRuleNotFound"
	// ReasonDestinationRuleNotUsable: the DestinationRule's host is not a
	// Service that selects the pods of both copies (the stable and canary
	// subsets would have no pods).
	ReasonDestinationRuleNotUsable = "DestinationRuleNotUsable"
)

// ReasonApplyFailed is the Ready condition's reason (False) when the
// controller could not apply what it decided: an admission plugin refused
// an object, or a router refused to overwrite one it does not own. The
// message has the error; status.observedGeneration stays at the last
// generation applied until an apply succeeds.
const ReasonApplyFailed = "ApplyFailed"

// Reasons of the Drifted condition.
const (
	// ReasonAsRecorded: the primary matches its revision's record
	// (Drifted False).
	ReasonAsRecorded = "AsRecorded"
	// ReasonPrimaryDrifted: the settled primary was edited or scaled by
	// hand and no longer matches its revision's record (Drifted True).
	// Also a Warning Event.
	ReasonPrimaryDrifted = "PrimaryDrifted"
)

// Reasons of Events that mark a moment of a release rather than a state.
const (
	// ReasonRequestIgnored (Warning): a sluice.dev/request the phase
	// does not allow, or an unknown action.
	ReasonRequestIgnored = "RequestIgnored"
	// ReasonPromoteRequested: a promote or promote-full request was acted
	// on.
	ReasonPromoteRequested = "PromoteRequested"
	// ReasonWeightSet: the router carries a step's weight.
	ReasonWeightSet = "WeightSet"
	// ReasonHeaderRouteSet: the router carries a step's header route.
	ReasonHeaderRouteSet = "HeaderRouteSet"
	// ReasonMirrorSet: the router carries a step's mirror.
	ReasonMirrorSet = "MirrorSet"
	// ReasonCheckFailed (Warning): a check round (or the pre-rollout
	// webhooks) failed; the message names each failed check.
	ReasonCheckFailed = "CheckFailed"
	// ReasonCheckInconclusive: a check round neither passed nor failed
	// (the judge's marginal score): the step waits, nothing is counted.
	ReasonCheckInconclusive = "CheckInconclusive"
	// ReasonGateOpened: a webhook gate's hooks all answered 2xx.
	ReasonGateOpened = "GateOpened"
	// ReasonGateClosed: a webhook gate's hooks refused.
	ReasonGateClosed = "GateClosed"
	// ReasonVerified: the promoted primary matches its revision's record.
	ReasonVerified = "Verified"
	// ReasonVerificationMismatch (Warning): the promoted primary differed
	// from its record; counted against spec.verification.retries.
	ReasonVerificationMismatch = "VerificationMismatch"
	// ReasonPostRolloutFailed (Warning): a post-rollout webhook failed.
	ReasonPostRolloutFailed = "PostRolloutFailed"
)

// Reasons of the Events recorded when a Canary is deleted and the traffic
// is handed back (see spec.handBackOnDeletion).
const (
	// ReasonHandedBack: the target is available and has the traffic back.
	ReasonHandedBack = "HandedBack"
	// ReasonPrimaryKept (Warning): the primary keeps serving, no longer
	// managed by Sluice.
	ReasonPrimaryKept = "PrimaryKept"
	// ReasonHandoverUnready (Warning): the target was not available in
	// time but, with no primary to keep, got the traffic anyway.
	ReasonHandoverUnready = "HandoverUnready"
)

// ReasonSuperseded is a CanaryRevision's status.reason when a newer
// revision replaced it before its release ended.
const ReasonSuperseded = "Superseded"
