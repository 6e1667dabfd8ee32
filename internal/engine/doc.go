// Package engine decides what a Canary should do next.
//
// It is pure: Decide maps (canary spec and status, observations of the
// cluster, the current time) to the next status, the desired state of the
// workload and route, Events, and when to look again. It has no client, no
// clock and no I/O, so every transition is a table row in its tests, and a
// controller killed at any instant converges to the same end state: status
// records what was decided, observations re-derive the rest.
//
// The transition table, by phase:
//
//	(none), Initializing  -> Initialized     primary copy Ready at the target's revision, route 100% primary,
//	                                         target scaled to 0
//	Initialized, Succeeded, Failed, Waiting (idle)
//	                      -> Waiting         a new revision (or a retry) whose confirm-rollout hooks have not
//	                                         approved it yet; traffic stays on the primary
//	                      -> Progressing     target revision differs from status.canaryRevision, a retry
//	                                         request after Failed, or Waiting's hooks approved
//	                      -> Succeeded       the target went back to the stable revision (from Waiting, Failed)
//	                      -> Failed          abort request while Waiting
//	Progressing, Paused, WaitingPromotion
//	                      -> Progressing     a step applied (setWeight read back, timed pause over, promote
//	                                         request), resumed after spec.paused, or the revision replaced
//	                      -> Waiting         the revision replaced mid-release and confirm-rollout hooks exist
//	                      -> Paused          spec.paused
//	                      -> WaitingPromotion a pause step without duration; the confirm-promotion gate closed
//	                      -> Promoting       every step done, a promote-full request, or the primary already
//	                                         at the canary's revision (a promotion whose status write was lost)
//	                      -> Failed          abort request, progress deadline, target deleted, failed check
//	                                         rounds or pre-rollout hooks at the threshold, a rollback hook
//	Promoting             -> Finalising      all traffic on the canary (read back), then the primary
//	                                         updated and verified at the canary's revision
//	                      -> Progressing     the target moved on before the primary was touched
//	                      -> Failed          abort before the primary is updated; verification failed
//	                      (Stalled)          the route not carrying 100% canary past the deadline
//	Finalising            -> Succeeded       route 100% primary; canary scaled to 0
//	                      (Stalled)          the primary not Ready past the deadline (traffic on the canary)
//
// A blue/green release (spec.strategy.blueGreen) is the same walk over
// three steps (Steps): the preview, a pause at 0% with the new revision at
// previewReplicaCount behind the preview Service, whose check rounds run
// at weight 0; the switch, setWeight 100 once the new revision is Ready
// at full size; the scale-down delay, a pause at 100% with the old primary
// still at full size, where a failed round or an abort switches back. Then
// Promoting and Finalising as above.
//
// With an autoscaler (Observations.Autoscaler) the copies' counts are the
// autoscalers': Desired asks for a count only to scale a copy up from
// zero, to raise the canary to the primary's count before it takes all
// traffic, and to scale the canary down at the end.
//
// A configuration a router or a backend check refuses (Observations.Blocked)
// is reported Stalled in every phase. spec.suspend freezes every phase.
//
// Traffic only ever moves toward a copy that is Ready at its threshold: a
// desired weight above 0 needs the canary Ready, below 100 the primary.
//
// Where the code is: decide.go (Decide, requests, the phase dispatch),
// idle.go (initialize, idle, the steady state), release.go (a release's
// guards and holds, one handler per step kind, the start of the
// promotion), promote.go (promotion, Finalising, rollback), verify.go
// (the promoted primary's verification), checks.go (check rounds),
// hooks.go (webhook gates), route.go (asking for a route, reading it
// back, the settle time), readiness.go (a copy's readiness, thresholds,
// deadlines), status.go (phase, conditions, Events, requeue), steps.go
// (the steps of a strategy), bluegreen.go (what a blue/green release does
// differently: preview size, rounds at 0%, the switch at full size),
// handover.go (who gets the traffic when a
// Canary is deleted), types.go (Input, Observations, Output).
package engine
