// Package convert turns Flagger and Argo Rollouts manifests into Sluice
// manifests (`kubectl sluice convert`).
//
// Sources: flagger.app/v1beta1 Canary, MetricTemplate and AlertProvider;
// argoproj.io/v1alpha1 Rollout, AnalysisTemplate and
// ClusterAnalysisTemplate. Everything here is a pure function of the
// objects read: no client, no I/O.
//
// Every field of a source object ends in the Report as carried (same
// meaning, maybe a new place), translated (a different spelling of the
// same behaviour, with a note saying how) or not carried (with the
// reason, and what to use instead where Sluice has something near). A
// field the converter does not read at all is reported as not carried
// too, so nothing is dropped in silence.
//
// testdata/fields lists every field of the peers' schemas; the tests
// check that the corpus in testdata/{flagger,argo} reaches each of them.
package convert

//go:generate go run ./gen
