package cli

import (
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Action is one of the steering commands.
type Action string

// The actions: the request annotation's, plus pause and resume (which set
// spec.paused).
const (
	Promote     Action = v1alpha1.RequestPromote
	PromoteFull Action = v1alpha1.RequestPromoteFull
	Abort       Action = v1alpha1.RequestAbort
	Retry       Action = v1alpha1.RequestRetry
	Pause       Action = "pause"
	Resume      Action = "resume"
)

// Plan says what an action will do to a Canary in its current state, or
// why it makes no sense now.
func Plan(c *v1alpha1.Canary, a Action) (string, error) {
	name := c.Namespace + "/" + c.Name
	p := c.Status.Phase
	switch a {
	case Abort:
		if p == v1alpha1.PhaseWaiting {
			return fmt.Sprintf("canary %s drops revision %s before its release starts", name, c.Status.CanaryRevision), nil
		}
		if p == v1alpha1.PhasePromoting {
			if v := c.Status.Verification; v != nil && v.Revision == c.Status.CanaryRevision && v.State != v1alpha1.VerificationFailed {
				return "", fmt.Errorf("canary %s is Promoting and its primary already runs revision %s: too late to abort (it is verified, and rolled back if verification fails)", name, c.Status.CanaryRevision)
			}
			return fmt.Sprintf("canary %s stops its promotion before the primary is updated and rolls back: all traffic to the primary (revision %s)", name, c.Status.StableRevision), nil
		}
		if !releasing(p) {
			return "", fmt.Errorf("canary %s is %s: no release is in progress to %s", name, phaseName(p), a)
		}
		return fmt.Sprintf("canary %s rolls back now: all traffic to the primary (revision %s)", name, c.Status.StableRevision), nil
	case Promote, PromoteFull:
		if !releasing(p) {
			return "", fmt.Errorf("canary %s is %s: no release is in progress to %s", name, phaseName(p), a)
		}
		// Webhook gates are approvals from elsewhere: a promote request
		// does not override them.
		gate := ""
		if g := c.Status.Gate; g != nil && !g.Open {
			gate = fmt.Sprintf("; the closed %s gate still has to open", g.Type)
		}
		if a == Promote {
			return fmt.Sprintf("canary %s leaves step %d now%s", name, c.Status.CurrentStep, gate), nil
		}
		return fmt.Sprintf("canary %s skips its remaining steps and promotes revision %s%s", name, c.Status.CanaryRevision, gate), nil
	case Retry:
		if p != v1alpha1.PhaseFailed {
			return "", fmt.Errorf("canary %s is %s: only a Failed release can be retried", name, phaseName(p))
		}
		return fmt.Sprintf("canary %s releases revision %s again", name, c.Status.CanaryRevision), nil
	case Pause:
		if c.Spec.Paused {
			return "", fmt.Errorf("canary %s is already paused", name)
		}
		return fmt.Sprintf("canary %s holds where it is until resumed", name), nil
	case Resume:
		if !c.Spec.Paused {
			return "", fmt.Errorf("canary %s is not paused", name)
		}
		return fmt.Sprintf("canary %s resumes; the current pause step starts over", name), nil
	}
	return "", fmt.Errorf("unknown action %q", a)
}

func phaseName(p v1alpha1.CanaryPhase) string {
	if p == "" {
		return "new"
	}
	return string(p)
}
