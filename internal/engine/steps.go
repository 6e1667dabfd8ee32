package engine

import (
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Steps returns the release's steps: spec.strategy.steps as written, or
// Flagger's shorthand expanded into "setWeight w, pause interval" pairs.
//
// A blue/green strategy is three steps: the preview (a pause at weight 0,
// for autoPromotionSeconds, or until promoted without auto-promotion),
// the switch (setWeight 100) and the scale-down delay (a pause at 100).
func Steps(s v1alpha1.Strategy) []v1alpha1.Step {
	if bg := s.BlueGreen; bg != nil {
		preview := &v1alpha1.PauseStep{}
		if bg.AutoPromotes() {
			preview.Duration = &metav1.Duration{Duration: bg.GetAutoPromotion()}
		}
		return []v1alpha1.Step{
			BlueGreenPreviewStep: {Pause: preview},
			BlueGreenSwitchStep:  {SetWeight: ptr(int32(100))},
			BlueGreenDelayStep:   {Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: bg.GetScaleDownDelay()}}},
		}
	}
	if len(s.Steps) > 0 {
		return s.Steps
	}
	var weights []int32
	switch {
	case len(s.StepWeights) > 0:
		for _, w := range s.StepWeights {
			if s.MaxWeight != nil && w > *s.MaxWeight {
				break
			}
			weights = append(weights, w)
		}
	case s.StepWeight != nil && *s.StepWeight > 0:
		for w := *s.StepWeight; w <= s.GetMaxWeight(); w += *s.StepWeight {
			weights = append(weights, w)
		}
	}
	var interval *metav1.Duration
	if s.Interval != nil {
		interval = &metav1.Duration{Duration: s.Interval.Duration}
	}
	out := make([]v1alpha1.Step, 0, 2*len(weights))
	for _, w := range weights {
		out = append(out, v1alpha1.Step{SetWeight: ptr(w)})
		if interval != nil && interval.Duration > 0 {
			out = append(out, v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: interval}})
		}
	}
	return out
}

// The steps of a blue/green release, by index.
const (
	BlueGreenPreviewStep = 0
	BlueGreenSwitchStep  = 1
	BlueGreenDelayStep   = 2
)

// WeightAt is the canary weight in force at step i: that of the last
// setWeight at or before it, 0 when there is none.
func WeightAt(steps []v1alpha1.Step, i int) int32 {
	if i >= len(steps) {
		i = len(steps) - 1
	}
	for ; i >= 0; i-- {
		if steps[i].SetWeight != nil {
			return *steps[i].SetWeight
		}
	}
	return 0
}

// PauseDuration returns the pause of a step and whether it has one; a
// pause without a duration returns (0, true) and holds until promoted.
func PauseDuration(s v1alpha1.Step) (time.Duration, bool) {
	if s.Pause == nil {
		return 0, false
	}
	if s.Pause.Duration == nil {
		return 0, true
	}
	return s.Pause.Duration.Duration, true
}

func ptr[T any](v T) *T { return &v }

// HeaderRouteKey is a header route in one string, for comparing what is
// asked with what a router carries: "name=value" for an exact match,
// "name~regex" for a regular expression, sorted (routers may keep matches
// in a map) and joined by ";". "" for none.
func HeaderRouteKey(hr *v1alpha1.HeaderRoute) string {
	if hr == nil {
		return ""
	}
	headers := hr.Headers()
	parts := make([]string, 0, len(headers))
	for _, m := range headers {
		switch {
		case m.Exact != nil:
			parts = append(parts, m.Name+"="+*m.Exact)
		case m.Regex != nil:
			parts = append(parts, m.Name+"~"+*m.Regex)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ";")
}

// walking says whether a release in phase p walks its steps: Progressing,
// Paused or WaitingPromotion.
func walking(p v1alpha1.CanaryPhase) bool {
	switch p {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseWaitingPromotion:
		return true
	}
	return false
}
