package convert

import (
	"slices"
	"testing"
)

// TestFlaggerWeights pins Flagger's walk against Sluice's shorthand: where
// they differ, convert writes the walk out as stepWeights.
func TestFlaggerWeights(t *testing.T) {
	for _, tc := range []struct {
		stepWeight, maxWeight int32
		stepWeights           []int32
		flagger, sluice       []int32
	}{
		{stepWeight: 20, maxWeight: 50, flagger: []int32{20, 40, 60}, sluice: []int32{20, 40}},
		{stepWeight: 10, maxWeight: 30, flagger: []int32{10, 20, 30}, sluice: []int32{10, 20, 30}},
		{stepWeight: 30, flagger: []int32{30, 60, 90, 100}, sluice: []int32{30}},
		{stepWeights: []int32{5, 10, 25, 50}, maxWeight: 30, flagger: []int32{5, 10, 25, 50}},
	} {
		if got := flaggerWeights(tc.stepWeight, tc.stepWeights, tc.maxWeight); !slices.Equal(got, tc.flagger) {
			t.Errorf("flaggerWeights(%d, %v, %d) = %v, want %v", tc.stepWeight, tc.stepWeights, tc.maxWeight, got, tc.flagger)
		}
		if tc.stepWeight > 0 {
			if got := sluiceWeights(tc.stepWeight, weightOr(tc.maxWeight, 50)); !slices.Equal(got, tc.sluice) {
				t.Errorf("sluiceWeights(%d, %d) = %v, want %v", tc.stepWeight, tc.maxWeight, got, tc.sluice)
			}
		}
	}
}
