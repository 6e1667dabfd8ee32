package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// CanaryRevisionSpec is what one revision of a Canary's target is: the
// expected state the primary must reach when this revision is promoted,
// and the template to restore it from.
type CanaryRevisionSpec struct {
	// Canary is the Canary's name.
	Canary string `json:"canary"`
	// Revision is the hash of the target's pod template (and the data of
	// the ConfigMaps and Secrets it references).
	Revision string `json:"revision"`
	// Number orders a Canary's revisions: 1 for its first, then up.
	Number int64 `json:"number"`
	// Images is the containers' images, comma-separated (for display).
	// +optional
	Images string `json:"images,omitempty"`
	// Containers are each container's image and resources, as the primary
	// must run them.
	// +optional
	Containers []ContainerRecord `json:"containers,omitempty"`
	// Replicas is the number of replicas the primary runs at this revision.
	Replicas int32 `json:"replicas"`
	// Config lists the ConfigMaps and Secrets the template references,
	// each with the hash of its data at this revision. The primary reads
	// Sluice's copy of each (named after the primary and this hash), so
	// restoring this revision brings back exactly this data. Records
	// written before Sluice made copies have none: their primary reads
	// the user's objects.
	// +listType=atomic
	// +optional
	Config []ConfigRecord `json:"config,omitempty"`
	// Template is the target's pod template at this revision (a
	// PodTemplateSpec), from which the primary is restored and to which
	// `kubectl sluice undo` returns the target.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Template runtime.RawExtension `json:"template"`
}

// ContainerRecord is one container's expected state.
type ContainerRecord struct {
	// Name of the container.
	Name string `json:"name"`
	// Image the container runs.
	Image string `json:"image"`
	// Resources the container requests and is limited to.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
}

// ConfigRecord is a ConfigMap or Secret a revision's template references,
// and the hash of its data at that revision (never the data).
type ConfigRecord struct {
	// Kind is ConfigMap or Secret.
	// +kubebuilder:validation:Enum=ConfigMap;Secret
	Kind string `json:"kind"`
	// Name is the object's name, as the template references it.
	Name string `json:"name"`
	// DataHash is the hash of its data (keys and values).
	DataHash string `json:"dataHash"`
}

// Outcomes of a revision.
const (
	OutcomeProgressing = "Progressing"
	OutcomeSucceeded   = "Succeeded"
	OutcomeFailed      = "Failed"
	// OutcomeSuperseded: a newer revision replaced it before it ended.
	OutcomeSuperseded = "Superseded"
)

// CanaryRevisionStatus is what became of the revision.
type CanaryRevisionStatus struct {
	// Outcome: Progressing, Succeeded, Failed or Superseded.
	// +optional
	Outcome string `json:"outcome,omitempty"`
	// Reason of the release's end: the Canary's status.reason at the
	// time, or Superseded.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message of the release's end: the Canary's status.message at the
	// time.
	// +optional
	Message string `json:"message,omitempty"`
	// StartTime is when the revision's release started (or the primary was
	// created from it).
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// EndTime is when it was promoted or rolled back.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
	// FailedChecks is the number of failed check rounds of its release.
	// +optional
	FailedChecks int32 `json:"failedChecks,omitempty"`
	// CheckRounds is the number of check rounds counted in its release.
	// +optional
	CheckRounds int64 `json:"checkRounds,omitempty"`
	// Metrics are the last round's results.
	// +optional
	Metrics []MetricStatus `json:"metrics,omitempty"`
	// History is the release as it went: a point for each counted check
	// round and each change of weight, oldest first, for charts
	// (kubectl sluice dashboard). Bounded: past MaxHistory points the
	// older half is thinned (every other point dropped, the first kept),
	// so the whole release stays drawn and the recent rounds stay whole.
	// +kubebuilder:validation:MaxItems=200
	// +listType=atomic
	// +optional
	History []ReleasePoint `json:"history,omitempty"`
}

// MaxHistory bounds a record's status.history.
const MaxHistory = 200

// ReleasePoint is one point of a release's history.
type ReleasePoint struct {
	// Time the point was recorded.
	Time metav1.Time `json:"time"`
	// Step is the index of the step being run.
	Step int32 `json:"step"`
	// Weight is the canary's share (percent) at the time.
	Weight int32 `json:"weight"`
	// Round is the check round counted at this point (the Canary's
	// status.checkedRound); 0 when the point is only a weight
	// change.
	// +optional
	Round int64 `json:"round,omitempty"`
	// FailedChecks is the release's count of failed rounds at the time.
	// +optional
	FailedChecks int32 `json:"failedChecks,omitempty"`
	// Values are the round's results, one per metric or webhook.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Values []PointValue `json:"values,omitempty"`
}

// PointValue is one metric's result in a round.
type PointValue struct {
	// Name of the metric or webhook.
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Value as the status showed it; empty when the query did not answer.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Value string `json:"value,omitempty"`
	// Result: Passed, Failed, Inconclusive or Skipped.
	// +kubebuilder:validation:Enum=Passed;Failed;Inconclusive;Skipped
	Result string `json:"result"`
}

// Results of a PointValue.
const (
	ResultPassed       = "Passed"
	ResultFailed       = "Failed"
	ResultInconclusive = "Inconclusive"
	ResultSkipped      = "Skipped"
)

// Result names a check's result in one word: Passed, Failed,
// Inconclusive or Skipped.
func (m MetricStatus) Result() string {
	switch {
	case m.Skipped:
		return ResultSkipped
	case m.Inconclusive:
		return ResultInconclusive
	case m.Passed:
		return ResultPassed
	}
	return ResultFailed
}

// CanaryRevision records one revision a Canary released, and what became
// of it. Sluice creates one per revision, owned by the Canary, and keeps
// the Canary's spec.revisionHistoryLimit newest.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=sluice,shortName=crev
// +kubebuilder:printcolumn:name="Canary",type=string,JSONPath=`.spec.canary`
// +kubebuilder:printcolumn:name="Number",type=integer,JSONPath=`.spec.number`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.spec.revision`
// +kubebuilder:printcolumn:name="Outcome",type=string,JSONPath=`.status.outcome`
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.images`
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=`.status.startTime`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
type CanaryRevision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CanaryRevisionSpec   `json:"spec"`
	Status CanaryRevisionStatus `json:"status,omitempty"`
}

// CanaryRevisionList is a list of CanaryRevisions.
//
// +kubebuilder:object:root=true
type CanaryRevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CanaryRevision `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CanaryRevision{}, &CanaryRevisionList{})
}
