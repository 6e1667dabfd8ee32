package engine

import (
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// A blue/green release walks three steps (see Steps): the preview, where
// the new revision runs behind the preview Service with no production
// traffic and check rounds run against it at weight 0; the switch, which
// moves all traffic at once once the new revision runs Ready at full size;
// the scale-down delay, where the old copy still runs at full size and a
// failed round or an abort switches back. Then the promotion, as for a
// canary walk: the primary takes the new revision while the canary carries
// everything, and the traffic returns to it.

// blueGreen is the strategy's blue/green settings, nil for a canary walk.
func (d *decider) blueGreen() *v1alpha1.BlueGreen { return d.c.Spec.Strategy.BlueGreen }

// previewing says whether a blue/green release is at its preview step.
func (d *decider) previewing() bool { return InPreview(d.c.Spec.Strategy, d.st) }

// InPreview says whether a status (as decided) is a blue/green release at
// its preview step: the new revision runs with no production traffic.
func InPreview(s v1alpha1.Strategy, st v1alpha1.CanaryStatus) bool {
	return walking(st.Phase) && s.BlueGreen != nil && st.CurrentStep == BlueGreenPreviewStep
}

// releaseTargetReplicas is how many replicas the canary runs while a
// release walks its steps: full size, or previewReplicaCount (never more)
// during a blue/green preview.
func (d *decider) releaseTargetReplicas() int32 {
	if bg := d.blueGreen(); bg != nil && bg.PreviewReplicaCount != nil && d.st.CurrentStep == BlueGreenPreviewStep {
		return min(*bg.PreviewReplicaCount, d.fullSize())
	}
	return d.fullSize()
}

// fullSize is how many replicas a copy runs at full size. A blue/green
// preview runs fewer (previewReplicaCount), and the target's spec.replicas
// (ReleaseReplicas) is then that count: the primary's, which runs at full
// size all through the release, counts too.
func (d *decider) fullSize() int32 {
	if d.blueGreen() != nil && d.obs.Primary.Exists && d.obs.Primary.Replicas > d.obs.ReleaseReplicas {
		return d.obs.Primary.Replicas
	}
	return d.obs.ReleaseReplicas
}

// fullSizeForSwitch scales a blue/green preview to full size before the
// switch, and reports whether the canary's Deployment asks for it: its
// readiness (checked when the weight is set) then counts every replica.
func (d *decider) fullSizeForSwitch() bool {
	if d.blueGreen() == nil {
		return true
	}
	if d.obs.Autoscaler != nil {
		// The autoscaler owns the count; raised to the primary's first
		// unless it is asked to decide alone.
		ok, why := d.canaryRaised()
		if !ok {
			d.setPhase(v1alpha1.PhaseProgressing, v1alpha1.ReasonWaitingForCanary, fmt.Sprintf("step %d: %s", d.st.CurrentStep, why))
			d.checkDeadline(d.st.Message)
		}
		return ok
	}
	full := d.fullSize()
	d.out.Desired.TargetReplicas = ptr(full)
	if t := d.obs.Target; t.Replicas < full {
		d.setPhase(v1alpha1.PhaseProgressing, v1alpha1.ReasonWaitingForCanary,
			fmt.Sprintf("step %d: scaling the preview from %d to %d replicas before the switch", d.st.CurrentStep, t.Replicas, full))
		d.checkDeadline(d.st.Message)
		return false
	}
	return true
}

// pauseWords describes a pause step for the status: what it holds, and
// what ends it.
func (d *decider) pauseWords(p *v1alpha1.PauseStep) (holding, untilPromoted string) {
	i := d.st.CurrentStep
	if d.blueGreen() == nil {
		if p.Duration != nil {
			return fmt.Sprintf("step %d: holding %d%% for %s", i, d.st.CanaryWeight, p.Duration.Duration), ""
		}
		return "", fmt.Sprintf("step %d: paused at %d%% until promoted (kubectl sluice promote)", i, d.st.CanaryWeight)
	}
	switch {
	case i == BlueGreenPreviewStep && p.Duration == nil:
		return "", fmt.Sprintf("step %d: preview of revision %s Ready behind the preview Service; the switch waits until promoted (kubectl sluice promote)", i, d.st.CanaryRevision)
	case i == BlueGreenPreviewStep:
		return fmt.Sprintf("step %d: previewing revision %s for %s before the switch", i, d.st.CanaryRevision, p.Duration.Duration), ""
	}
	return fmt.Sprintf("step %d: all traffic on revision %s; the old copy keeps running for %s (scale-down delay)", i, d.st.CanaryRevision, p.Duration.Duration), ""
}
