package engine

import (
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func (d *decider) verifyTimeout() time.Duration { return d.c.Spec.Verification.GetTimeout() }

func (d *decider) verifyRetries() int32 { return d.c.Spec.Verification.GetRetries() }

func (d *decider) verifyInterval() time.Duration { return d.c.Spec.Verification.GetInterval() }

// verify checks the primary promoted to rev against the revision's record:
// generation observed, every pod updated (no old pod counted as
// available), available at the ready threshold, containers' images and
// resources and the replicas as recorded. A mismatch that will not heal
// by waiting (the template changed by someone else, which is re-applied;
// the Deployment reporting a failure such as exceeded quota) counts
// against spec.verification.retries, at most once per interval; the whole
// verification is bounded by its timeout. It reports whether the primary
// is verified; when verification fails it rolls the release back, which
// restores the primary from the stable revision's record.
func (d *decider) verify(rev string) bool {
	v := d.st.Verification
	if v == nil || v.Revision != rev || v.State == v1alpha1.VerificationFailed {
		// A new promotion (a retry of a revision that failed verification
		// starts afresh).
		v = &v1alpha1.VerificationStatus{Revision: rev, State: v1alpha1.VerificationVerifying, StartedAt: &d.now}
		d.st.Verification = v
	}
	p := d.obs.Primary
	ok, why := d.ready("primary", p, rev, d.primaryThreshold())
	matches := !(p.Exists && p.Revision == rev && d.obs.Drift != "")
	if ok && matches {
		if v.State != v1alpha1.VerificationVerified {
			v.State, v.FinishedAt = v1alpha1.VerificationVerified, &d.now
			d.event(false, v1alpha1.ReasonVerified, fmt.Sprintf("primary runs revision %s as recorded: %d/%d available", rev, p.AvailableReplicas, p.Replicas))
		}
		return true
	}
	if v.State == v1alpha1.VerificationVerified {
		// It was verified in this promotion and slipped since: verify anew.
		v.State, v.StartedAt, v.FinishedAt = v1alpha1.VerificationVerifying, &d.now, nil
		v.Mismatches, v.LastMismatch, v.LastMismatchField, v.LastMismatchTime = 0, "", "", nil
	}
	hard, field := "", ""
	switch {
	case !matches:
		hard, field = d.obs.Drift, d.obs.DriftField
	case p.Problem != "":
		hard, field = p.Problem, "rollout"
	}
	d.countMismatch(v, rev, hard, field)
	elapsed := d.now.Sub(v.StartedAt.Time)
	state, cause := verifyState(p, rev, hard, why)
	detail := state
	if cause != "" {
		detail += ": " + cause
	}
	var failure string
	switch {
	case v.Mismatches > d.verifyRetries():
		failure = fmt.Sprintf("%s after %d mismatches (%s): %s", state, v.Mismatches, v.LastMismatchField, v.LastMismatch)
	case elapsed >= d.verifyTimeout():
		failure = fmt.Sprintf("%s after %s", state, d.verifyTimeout())
		if cause != "" {
			failure += ": " + cause
		}
	}
	if failure != "" {
		v.State, v.FinishedAt = v1alpha1.VerificationFailed, &d.now
		d.rollback(v1alpha1.ReasonVerificationFailed, failure)
		return false
	}
	d.note(d.st.Reason, "verifying the primary at revision "+rev+": "+detail)
	next := d.verifyInterval()
	if left := d.verifyTimeout() - elapsed; left < next {
		next = left
	}
	d.requeue(next)
	return false
}

// countMismatch counts a mismatch that will not heal by waiting (hard,
// in field), at most once per verification interval.
func (d *decider) countMismatch(v *v1alpha1.VerificationStatus, rev, hard, field string) {
	if hard == "" || (v.LastMismatchTime != nil && d.now.Time.Before(v.LastMismatchTime.Add(d.verifyInterval()))) {
		return
	}
	v.Mismatches++
	v.LastMismatch, v.LastMismatchField, v.LastMismatchTime = hard, field, &d.now
	d.event(true, v1alpha1.ReasonVerificationMismatch, fmt.Sprintf("primary at revision %s, mismatch %d (tolerated %d): %s", rev, v.Mismatches, d.verifyRetries(), hard))
}

// verifyState is the primary's state in the numbers a person checks
// first, and its cause: the hard mismatch, else why it is not Ready when
// it is not even at the revision (or not observed).
func verifyState(p Workload, rev, hard, why string) (state, cause string) {
	state = fmt.Sprintf("primary %d/%d available, %d/%d updated", p.AvailableReplicas, p.Replicas, p.UpdatedReplicas, p.Replicas)
	if p.StatusReplicas > p.UpdatedReplicas {
		state = fmt.Sprintf("primary %d/%d updated, %d old replicas still running", p.UpdatedReplicas, p.Replicas, p.StatusReplicas-p.UpdatedReplicas)
	}
	cause = hard
	if cause == "" && (!p.Exists || !p.Current || p.Revision != rev) {
		cause = why
	}
	return state, cause
}

// restore asks for the primary to be rebuilt from the stable revision's
// record when it left that revision (a promotion that failed verification).
func (d *decider) restore() {
	p := d.obs.Primary
	if !p.Exists || d.st.StableRevision == "" || p.Revision == d.st.StableRevision {
		return
	}
	if !d.obs.StableRecord {
		d.stall(v1alpha1.ReasonNoStableRecord, fmt.Sprintf("the primary runs revision %s and there is no CanaryRevision record of the stable revision %s to restore it from", p.Revision, d.st.StableRevision))
		return
	}
	d.out.Desired.RestorePrimary = true
	d.out.Desired.PrimaryReplicas = d.primaryReplicas(d.obs.ReleaseReplicas)
}
