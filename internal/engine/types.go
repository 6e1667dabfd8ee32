package engine

import (
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Workload is what the controller observed of one Deployment (the user's
// target, which runs the canary, or the primary copy).
type Workload struct {
	// Exists is false when the Deployment is not there.
	Exists bool
	// Revision is the release revision the Deployment's pod template runs.
	Revision string
	// Replicas is spec.replicas.
	Replicas int32
	// UpdatedReplicas, AvailableReplicas are from status.
	UpdatedReplicas   int32
	AvailableReplicas int32
	// StatusReplicas is status.replicas: every pod of the Deployment, old
	// revisions' included. More than UpdatedReplicas means old pods still
	// run, and "available" may count them.
	StatusReplicas int32
	// Current is true when status.observedGeneration caught up with
	// metadata.generation.
	Current bool
	// Problem is the Deployment's own report of why it cannot progress
	// (ReplicaFailure or ProgressDeadlineExceeded condition), if any.
	Problem string
	// ReadyFloor, for a copy an autoscaler scales, is the autoscaler's
	// minimum: once the copy runs more, its readiness threshold counts
	// against this many replicas, so pods a scale-up is still starting
	// never make a Ready copy not Ready. 0 without an autoscaler.
	ReadyFloor int32
}

// Autoscaling is what the engine needs to know of a Canary's autoscaler
// (spec.autoscalerRef): the autoscalers own the copies' replicas, Sluice
// only scales a copy up from zero (and, before all traffic moves to the
// canary, raises it to the primary's count).
type Autoscaling struct {
	// CanaryStart is how many replicas the canary starts at when a
	// release scales it up from zero.
	CanaryStart int32
	// RaiseBeforeSwitch: before all traffic moves to the canary (the
	// promotion, a blue/green switch), the canary runs at least as many
	// replicas as the primary, Ready.
	RaiseBeforeSwitch bool
}

// Route is what the controller read back from the router.
type Route struct {
	// Exists is false when the route object is not there yet.
	Exists bool
	// CanaryWeight is the canary's share (percent) the route carries now.
	CanaryWeight int32
	// Pending, when not empty, says why the router has not taken the last
	// write yet (for example a Gateway that has not accepted the route).
	Pending string
	// HeaderRoute is HeaderRouteKey of the header route the router
	// carries ("" for none).
	HeaderRoute string
	// MirrorPercent is the share of requests the router copies to the
	// canary (0 for none).
	MirrorPercent int32
	// Settle, when above zero, is how long the router's proxy may take to
	// load a route after it is read back (a router whose proxy reports
	// nothing, like Traefik): a route counts as carried only once it has
	// been read back that long.
	Settle time.Duration
	// Share, with no router, is how many Ready endpoints of each copy the
	// apex Service lists: the canary's real share of requests.
	Share *v1alpha1.EndpointShare
}

// Observations are everything the engine knows about the cluster.
type Observations struct {
	// Target is the user's Deployment. Its revision is the hash of its pod
	// template and of the ConfigMaps and Secrets the template references.
	Target Workload
	// Primary is the <name>-primary copy.
	Primary Workload
	// ReleaseReplicas is how many replicas a copy should run: the target's
	// spec.replicas when set above zero, else the primary's, else 1.
	ReleaseReplicas int32
	// Autoscaler is set when the Canary's autoscaler exists; nil
	// otherwise.
	Autoscaler *Autoscaling
	// Route is the router's read-back.
	Route Route
	// Blocked, when not empty, is a configuration problem that stops
	// traffic from moving (a missing backend, a cross-namespace reference
	// without a ReferenceGrant). The text names the object and the fix.
	Blocked string
	// BlockedReason is the CamelCase reason for Blocked.
	BlockedReason string
	// BlockedWithdrawable is true when the problem does not concern a
	// route that only sends everything to the primary (a router's
	// reference used by header routes, say): such a route may still be
	// written, so an abort or a rollback takes the canary's traffic away.
	BlockedWithdrawable bool
	// Checks is the result of a finished check round, when the controller
	// has one.
	Checks *CheckResult
	// Hooks are the last answers of the gate webhooks, by type.
	Hooks map[v1alpha1.WebhookType]HookResult
	// StableRecord is true when the CanaryRevision record of
	// status.stableRevision exists: the primary can be restored from it.
	StableRecord bool
	// Drift, when not empty, says how the primary's spec differs from the
	// record of the revision its template carries (a container's image or
	// resources, its replicas); DriftField names the field. Empty when
	// there is no record to compare with.
	Drift      string
	DriftField string
}

// HookResult is the answer of every webhook of one type to one HookCall.
type HookResult struct {
	// Key and Since are those of the HookCall answered.
	Key   string
	Since time.Time
	// Done is when the last hook answered.
	Done time.Time
	// Passed is true when every hook answered 2xx.
	Passed bool
	// Message names the hooks that did not, and why.
	Message string
}

// HookCall asks for the webhooks of a type to be called. A call is made
// once per (Type, Key, Since): asking again with the same values is a
// no-op, so a decision repeated after a lost status write calls no hook
// twice.
type HookCall struct {
	Type  v1alpha1.WebhookType
	Key   string
	Since time.Time
}

// CheckResult is one finished round of metric checks.
type CheckResult struct {
	Round   int64
	Metrics []v1alpha1.MetricStatus
	// Judge is the statistical judge's round (its verdict is also among
	// Metrics, named "judge"), when metrics compare.
	Judge *v1alpha1.JudgeStatus
	// Rollback, when not empty, is a rollback webhook's 2xx answer: the
	// release must roll back.
	Rollback string
}

// Desired is the state the controller must bring the cluster to. A nil
// field means "leave it as it is".
type Desired struct {
	// PrimaryFromTarget: the primary's pod template must be the target's
	// current one (while initialising and promoting).
	PrimaryFromTarget bool
	// RestorePrimary: the primary's pod template must be the one recorded
	// for status.stableRevision (after a promotion failed verification).
	RestorePrimary bool
	// PrimaryReplicas is the primary's spec.replicas.
	PrimaryReplicas *int32
	// TargetReplicas is the target's (canary's) spec.replicas.
	TargetReplicas *int32
	// CanaryWeight is the canary's share of traffic in percent; the primary
	// gets the rest.
	CanaryWeight *int32
	// HeaderRoute, with CanaryWeight, is the header route the router must
	// carry on top of the weight (nil: none).
	HeaderRoute *v1alpha1.HeaderRoute
	// MirrorPercent, with CanaryWeight, is the share of requests the
	// router must copy to the canary (0: none).
	MirrorPercent int32
	// CheckRound, when above zero, is a check round that must run (the
	// controller starts it unless it is running or done).
	CheckRound int64
	// Hooks are webhook calls to make.
	Hooks []HookCall
	// Services: the apex, primary and canary Services must exist. Only set
	// once the primary is ready, so that taking over an existing apex
	// Service never points it at pods that cannot serve.
	Services bool
}

// Event is a Kubernetes Event to record on the Canary.
type Event struct {
	// Warning is true for a Warning event, false for Normal.
	Warning bool
	// Reason is CamelCase.
	Reason string
	// Message is a sentence.
	Message string
}

// Type is the Kubernetes Event type of e: "Warning" or "Normal" (the
// values of corev1.EventTypeWarning and corev1.EventTypeNormal).
func (e Event) Type() string {
	if e.Warning {
		return "Warning"
	}
	return "Normal"
}

// Input is everything Decide needs.
type Input struct {
	Canary *v1alpha1.Canary
	Obs    Observations
	Now    time.Time
	// ActingSince is when the controller deciding started to act with a
	// view of the cluster: its process's first decision, after it took
	// the lease, or when its caches last came to see the cluster again
	// after an apiserver outage (the time of the decision while they
	// still cannot). Time before it (a killed controller, a lease that
	// had to expire, watches waiting to come back) is no release's fault,
	// so the progress deadline counts from it at the earliest. Zero for
	// none.
	ActingSince time.Time
}

// Output is what Decide returns.
type Output struct {
	// Status is the Canary's next status (the controller writes it only
	// when it differs from the current one).
	Status v1alpha1.CanaryStatus
	// Desired is what the controller must apply.
	Desired Desired
	// Events to record.
	Events []Event
	// RequeueAfter, when above zero, is when to look again even if nothing
	// changes (a pause ending, a progress deadline).
	RequeueAfter time.Duration
	// RouteInFlight says the decision only waits for the router to carry
	// a weight it asked for: the route is written but not read back yet.
	// The decision that first reads it back (and starts its settle time)
	// is not in flight, so the status says what the router carries from
	// then on. The controller may keep such a status in memory instead of
	// writing it (internal/statusbatch).
	RouteInFlight bool
}

// Intervals of the engine's own (the spec's defaults are in api/v1alpha1).
const (
	// RoutePollInterval is how soon to look again while a router has not
	// reported a write as taken (routers whose status is not watched).
	RoutePollInterval = 5 * time.Second
	// BlockedRecheckInterval is how soon a Canary stalled on a
	// configuration problem is looked at again.
	BlockedRecheckInterval = 15 * time.Second
	// UnobservedRecheckInterval is how soon to look again at a copy whose
	// Deployment controller has not caught up with its spec (a watch
	// usually wakes the Canary first).
	UnobservedRecheckInterval = time.Second
)
