package controller

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// A long release's history stays within the CRD's bound (MaxHistory): the
// first point stays, the newest rounds stay whole, and every round is
// counted even when its point was thinned out.
func TestHistoryIsBounded(t *testing.T) {
	var h []v1alpha1.ReleasePoint
	var rounds int64
	start := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	st := v1alpha1.CanaryStatus{CanaryWeight: 10}
	h, rounds = addPoint(h, rounds, st, metav1.NewTime(start))
	if len(h) != 1 || rounds != 0 || h[0].Round != 0 {
		t.Fatalf("first point %+v, rounds %d: want a weight point, no round", h, rounds)
	}
	// Nothing moved: no point.
	if h2, _ := addPoint(h, rounds, st, metav1.NewTime(start.Add(time.Second))); len(h2) != 1 {
		t.Fatalf("a status with nothing new added a point: %+v", h2)
	}
	const n = 1000
	for i := int64(1); i <= n; i++ {
		st.CheckedRound = i
		st.Metrics = []v1alpha1.MetricStatus{{Name: "error-rate", Value: "0.5", Passed: i%3 != 0}}
		h, rounds = addPoint(h, rounds, st, metav1.NewTime(start.Add(time.Duration(i)*time.Second)))
		if len(h) > v1alpha1.MaxHistory {
			t.Fatalf("after round %d the history has %d points, over %d", i, len(h), v1alpha1.MaxHistory)
		}
	}
	if rounds != n {
		t.Errorf("counted %d rounds, want %d", rounds, n)
	}
	if h[0].Round != 0 || !h[0].Time.Equal(&metav1.Time{Time: start}) {
		t.Errorf("the first point was dropped: %+v", h[0])
	}
	last := h[len(h)-v1alpha1.MaxHistory/2:]
	for i, p := range last {
		if want := int64(n - len(last) + 1 + i); p.Round != want {
			t.Fatalf("newest points not whole: point %d is round %d, want %d", i, p.Round, want)
		}
	}
	for i := 1; i < len(h); i++ {
		if h[i].Round <= h[i-1].Round {
			t.Fatalf("history out of order at %d: %d after %d", i, h[i].Round, h[i-1].Round)
		}
	}
	for _, p := range h[1:] {
		want := v1alpha1.ResultPassed
		if p.Round%3 == 0 {
			want = v1alpha1.ResultFailed
		}
		if len(p.Values) != 1 || p.Values[0].Result != want {
			t.Fatalf("round %d values %+v: want one %s", p.Round, p.Values, want)
		}
	}
}
