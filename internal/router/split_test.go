package router_test

import (
	"math/rand"
	"reflect"
	"testing"

	"github.com/sluice-dev/sluice/internal/router"
)

func weighted(ws ...int32) []router.Backend {
	out := make([]router.Backend, len(ws))
	for i, w := range ws {
		out[i] = router.Backend{Kind: "Service", Name: "b" + string(rune('a'+i)), Weight: w}
	}
	return out
}

func TestPhaseWeights(t *testing.T) {
	tests := []struct {
		name    string
		share   int32
		weights []int32
		want    []int32
	}{
		{"no backends", 50, nil, []int32{}},
		{"single backend gets the whole share", 70, []int32{1}, []int32{7000}},
		{"single backend relative weight is irrelevant", 70, []int32{250}, []int32{7000}},
		{"single backend share 0", 0, []int32{5}, []int32{0}},
		{"single backend share 100", 100, []int32{1}, []int32{10000}},
		{"1:3 share 100", 100, []int32{1, 3}, []int32{2500, 7500}},
		{"1:3 share 30", 30, []int32{1, 3}, []int32{750, 2250}},
		{"1:3 share 0", 0, []int32{1, 3}, []int32{0, 0}},
		// 10000/3 = 3333 r 1 each; one point left, ties go to the first.
		{"three equal share 100", 100, []int32{1, 1, 1}, []int32{3334, 3333, 3333}},
		// 5000/3 = 1666 r 2 each; two points left.
		{"three equal share 50", 50, []int32{1, 1, 1}, []int32{1667, 1667, 1666}},
		{"three equal share 1", 1, []int32{1, 1, 1}, []int32{34, 33, 33}},
		// 10000*{1,2,4}/7 = 1428 r4, 2857 r1, 5714 r2: the point left goes
		// to the largest remainder (the first), not the largest weight.
		{"1:2:4 largest remainder", 100, []int32{1, 2, 4}, []int32{1429, 2857, 5714}},
		// 10000*{2,3,5}/10 divides exactly.
		{"2:3:5 exact", 100, []int32{2, 3, 5}, []int32{2000, 3000, 5000}},
		// 7 equal: 1428 r4 each, four points left to the first four.
		{"seven equal", 100, []int32{2, 2, 2, 2, 2, 2, 2}, []int32{1429, 1429, 1429, 1429, 1428, 1428, 1428}},
		{"zero-weight backend gets nothing", 40, []int32{3, 0, 1}, []int32{3000, 0, 1000}},
		{"zero-weight first backend gets nothing", 100, []int32{0, 1}, []int32{0, 10000}},
		// The zero-weight backend must not win the remainder tie although
		// it comes first.
		{"zero-weight backend never gets a remainder", 100, []int32{0, 1, 1, 1}, []int32{0, 3334, 3333, 3333}},
		{"zero-weight backend last", 100, []int32{1, 1, 1, 0}, []int32{3334, 3333, 3333, 0}},
		{"all-zero phase", 50, []int32{0, 0}, []int32{0, 0}},
		{"all-zero phase share 100", 100, []int32{0, 0, 0}, []int32{0, 0, 0}},
		// 10000*{1000,1000,1}/2001 = 4997 r1003, 4997 r1003, 4 r1996: the
		// third rounds up first, then the tie goes to the first.
		{"max weights", 100, []int32{1000, 1000, 1}, []int32{4998, 4997, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := router.PhaseWeights(tt.share, weighted(tt.weights...))
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("PhaseWeights(%d, %v) = %v, want %v", tt.share, tt.weights, got, tt.want)
			}
		})
	}
}

func TestPhaseWeightsDoesNotModifyBackends(t *testing.T) {
	in := weighted(1, 0, 3)
	before := weighted(1, 0, 3)
	router.PhaseWeights(55, in)
	if !reflect.DeepEqual(in, before) {
		t.Fatalf("backends modified: %v, was %v", in, before)
	}
}

// TestPhaseWeightsProperties checks, for thousands of random phases, that
// the weights add up to exactly share×100 (0 for a phase whose relative
// weights are all 0), that a zero-weight backend gets 0, that no weight is
// negative, that every weight is its exact proportional value rounded down
// or up (so within 1 of it), and that rounding up went to the largest
// remainders.
func TestPhaseWeightsProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(20240611))
	const cases = 20000
	for n := 0; n < cases; n++ {
		k := 1 + rng.Intn(8)
		ws := make([]int32, k)
		for i := range ws {
			switch rng.Intn(6) {
			case 0:
				ws[i] = 0 // make zero weights and all-zero phases common
			case 1:
				ws[i] = 1000
			default:
				ws[i] = int32(rng.Intn(1001))
			}
		}
		var share int32
		switch rng.Intn(8) {
		case 0:
			share = 0
		case 1:
			share = 100
		default:
			share = int32(rng.Intn(101))
		}

		got := router.PhaseWeights(share, weighted(ws...))
		if len(got) != k {
			t.Fatalf("case %d: PhaseWeights(%d, %v) returned %d weights, want %d", n, share, ws, len(got), k)
		}
		var sum, gotSum int64
		for _, w := range ws {
			sum += int64(w)
		}
		for _, g := range got {
			gotSum += int64(g)
		}
		total := int64(share) * 100
		wantSum := total
		if sum == 0 {
			wantSum = 0
		}
		if gotSum != wantSum {
			t.Fatalf("case %d: PhaseWeights(%d, %v) = %v sums to %d, want %d", n, share, ws, got, gotSum, wantSum)
		}
		// Remainders of backends rounded up and rounded down.
		minUp, maxDown := int64(-1), int64(-1)
		for i, g := range got {
			if g < 0 {
				t.Fatalf("case %d: PhaseWeights(%d, %v) = %v: weight %d is negative", n, share, ws, got, i)
			}
			if ws[i] == 0 {
				if g != 0 {
					t.Fatalf("case %d: PhaseWeights(%d, %v) = %v: zero-weight backend %d got %d", n, share, ws, got, i, g)
				}
				continue
			}
			// Exact value is total*w/sum; compare scaled by sum.
			exact := total * int64(ws[i])
			diff := int64(g)*sum - exact
			if diff < -sum || diff > sum {
				t.Fatalf("case %d: PhaseWeights(%d, %v) = %v: weight %d is %d, more than 1 from exact %d/%d", n, share, ws, got, i, g, exact, sum)
			}
			floor := exact / sum
			rem := exact % sum
			switch int64(g) {
			case floor:
				if rem > maxDown {
					maxDown = rem
				}
			case floor + 1:
				if rem < minUp || minUp < 0 {
					minUp = rem
				}
			default:
				t.Fatalf("case %d: PhaseWeights(%d, %v) = %v: weight %d is %d, neither floor %d nor floor+1", n, share, ws, got, i, g, floor)
			}
		}
		if minUp >= 0 && maxDown >= 0 && minUp < maxDown {
			t.Fatalf("case %d: PhaseWeights(%d, %v) = %v: rounded up a remainder %d/%d but rounded down a larger one %d/%d", n, share, ws, got, minUp, sum, maxDown, sum)
		}
	}
}

// TestPhaseWeightsPhasesAddUp: with both phases non-empty and weighted, the
// two phases' weights add up to 10000 for every canary share.
func TestPhaseWeightsPhasesAddUp(t *testing.T) {
	primary, canary := weighted(1, 2, 4), weighted(3, 0, 5)
	for w := int32(0); w <= 100; w++ {
		var sum int32
		for _, x := range router.PhaseWeights(100-w, primary) {
			sum += x
		}
		for _, x := range router.PhaseWeights(w, canary) {
			sum += x
		}
		if sum != 10000 {
			t.Fatalf("canary share %d: phases add up to %d, want 10000", w, sum)
		}
	}
}
