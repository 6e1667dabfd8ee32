package analysis

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// MannWhitney is the Mann-Whitney U test of two samples (x the canary, y
// the primary) by the normal approximation with the tie correction and a
// continuity correction, and the estimates that go with it.
type MannWhitney struct {
	// NX and NY are the sample sizes.
	NX, NY int
	// U is x's U statistic: the number of (x, y) pairs with x > y, ties
	// counted a half.
	U float64
	// Z is U standardised (continuity-corrected towards the mean).
	Z float64
	// PGreater is the one-sided p-value that x tends to be greater than
	// y; PLess that it tends to be less.
	PGreater, PLess float64
	// A is the common-language effect size, P(x > y) + P(x = y)/2: 0.5
	// when neither tends to be larger.
	A float64
	// Shift is the Hodges-Lehmann estimate of x's shift from y: the
	// median of all differences x_i - y_j.
	Shift float64
	// Constant is true when every value of both samples is the same: no
	// test is possible, and none is needed.
	Constant bool
}

// MannWhitneyU runs the test. Both samples must be non-empty.
func MannWhitneyU(x, y []float64) MannWhitney {
	nx, ny := len(x), len(y)
	r := MannWhitney{NX: nx, NY: ny}
	type obs struct {
		v float64
		x bool
	}
	all := make([]obs, 0, nx+ny)
	for _, v := range x {
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	// Average ranks over runs of ties; the tie term sums t^3 - t.
	n := float64(nx + ny)
	var rankX, ties float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // ranks i+1 .. j, averaged
		for k := i; k < j; k++ {
			if all[k].x {
				rankX += rank
			}
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	fx, fy := float64(nx), float64(ny)
	r.U = rankX - fx*(fx+1)/2
	r.A = r.U / (fx * fy)
	r.Shift = hodgesLehmann(x, y)
	mean := fx * fy / 2
	variance := fx * fy / 12 * ((n + 1) - ties/(n*(n-1)))
	if variance <= 0 {
		r.Constant = true
		r.PGreater, r.PLess = 1, 1
		return r
	}
	sd := math.Sqrt(variance)
	// One-sided tests, each with the continuity correction towards the
	// mean of its own direction.
	r.Z = (r.U - mean) / sd
	r.PGreater = upperTail((r.U - mean - 0.5) / sd)
	r.PLess = upperTail((mean - r.U - 0.5) / sd)
	return r
}

// upperTail is P(Z >= z) for a standard normal Z.
func upperTail(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// hodgesLehmann is the median of all pairwise differences x_i - y_j.
func hodgesLehmann(x, y []float64) float64 {
	d := make([]float64, 0, len(x)*len(y))
	for _, a := range x {
		for _, b := range y {
			d = append(d, a-b)
		}
	}
	return median(d)
}

// median of a sample (sorted in place); NaN when it is empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

// maxSamples bounds each copy's samples (the shift estimate costs their
// product); a longer series keeps its newest values.
const maxSamples = 2000

// Comparison is how one metric is compared.
type Comparison struct {
	// Direction is Increase, Decrease or Either (v1alpha1.Comparison).
	Direction string
	// Tolerance is the relative change of the canary's median within
	// which it is no worse (0.05 = 5%).
	Tolerance float64
	// MinSamples is the fewest samples of each copy judged.
	MinSamples int
	// Alpha is the test's significance level (1 - confidence), split over
	// both sides for Either.
	Alpha float64
}

// Verdict is one metric's comparison.
type Verdict struct {
	// Verdict is v1alpha1.VerdictPass, High, Low or NoData.
	Verdict                     string
	Canary, Primary             int
	CanaryMedian, PrimaryMedian float64
	// RelativeShift is the Hodges-Lehmann shift relative to the primary's
	// median (NaN when that median is 0).
	RelativeShift float64
	// P is the p-value in the worse direction (the smaller of the two for
	// Either).
	P       float64
	Message string
}

// Compare judges a canary's samples against the primary's. Too few
// samples is NoData, which is never a pass.
func Compare(canary, primary []float64, c Comparison) Verdict {
	canary, primary = finite(canary), finite(primary)
	v := Verdict{Canary: len(canary), Primary: len(primary), RelativeShift: math.NaN(), P: math.NaN(),
		CanaryMedian: median(slices.Clone(canary)), PrimaryMedian: median(slices.Clone(primary))}
	if len(canary) < c.MinSamples || len(primary) < c.MinSamples || len(canary) == 0 || len(primary) == 0 {
		v.Verdict = v1alpha1.VerdictNoData
		v.Message = fmt.Sprintf("not enough data: %d canary and %d primary samples, %d of each needed", len(canary), len(primary), c.MinSamples)
		return v
	}
	mw := MannWhitneyU(canary, primary)
	if v.PrimaryMedian != 0 {
		v.RelativeShift = mw.Shift / math.Abs(v.PrimaryMedian)
	}
	// A shift within the tolerance is no worse, whatever the test says; a
	// primary median of 0 leaves only the shift's sign.
	beyond := func(sign float64) bool {
		if math.IsNaN(v.RelativeShift) {
			return sign*mw.Shift > 0
		}
		return sign*v.RelativeShift > c.Tolerance
	}
	alpha := c.Alpha
	up, down := c.Direction != "Decrease", c.Direction != "Increase"
	if up && down {
		alpha /= 2
	}
	switch {
	case up && down:
		v.P = math.Min(mw.PGreater, mw.PLess)
	case up:
		v.P = mw.PGreater
	default:
		v.P = mw.PLess
	}
	v.Verdict = v1alpha1.VerdictPass
	switch {
	case mw.Constant:
	case up && mw.PGreater < alpha && beyond(1):
		v.Verdict = v1alpha1.VerdictHigh
	case down && mw.PLess < alpha && beyond(-1):
		v.Verdict = v1alpha1.VerdictLow
	}
	v.Message = v.describe(c)
	return v
}

func (v Verdict) describe(c Comparison) string {
	shift := "n/a"
	if !math.IsNaN(v.RelativeShift) {
		shift = FormatPercent(v.RelativeShift)
	}
	sizes := fmt.Sprintf("median %s vs %s, shift %s, p=%s, n=%d/%d", FormatValue(v.CanaryMedian), FormatValue(v.PrimaryMedian), shift, FormatValue(v.P), v.Canary, v.Primary)
	switch v.Verdict {
	case v1alpha1.VerdictHigh:
		return "canary higher than primary (" + sizes + ")"
	case v1alpha1.VerdictLow:
		return "canary lower than primary (" + sizes + ")"
	}
	return fmt.Sprintf("no worse than primary within %s (%s)", FormatPercent(c.Tolerance), sizes)
}

// FormatPercent writes a ratio as a signed percentage: 0.234 is "+23.4%".
func FormatPercent(r float64) string { return fmt.Sprintf("%+.1f%%", 100*r) }

// FormatValue writes a sample statistic with 4 significant digits; NaN
// (no samples) is "".
func FormatValue(f float64) string {
	if math.IsNaN(f) {
		return ""
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}

// finite drops NaN and infinite samples (a rate over no requests) and
// keeps at most maxSamples, the newest.
func finite(v []float64) []float64 {
	out := make([]float64, 0, len(v))
	for _, f := range v {
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			out = append(out, f)
		}
	}
	if len(out) > maxSamples {
		out = out[len(out)-maxSamples:]
	}
	return out
}

// Scored is a metric's verdict with its weight in the score.
type Scored struct {
	Verdict  string
	Weight   int
	Critical bool
}

// Score judges a round from its metrics' verdicts: the share, by weight,
// of the metrics with data in which the canary is no worse, 0 to 100, and
// Pass, Marginal or Fail by the thresholds. A metric that could not be
// read (Error) fails the round, as a fixed check's query error does; so
// does a critical metric that is worse (score 0). Without enough data (a
// critical metric, or half the weight, NoData) the verdict is NoData: not
// a pass and not a failure, the step waits for a round with the data.
func Score(metrics []Scored, pass, marginal int32) (float64, string) {
	var total, noData, passed float64
	criticalNoData := false
	for _, m := range metrics {
		w := float64(max(m.Weight, 1))
		total += w
		switch m.Verdict {
		case v1alpha1.VerdictPass:
			passed += w
		case v1alpha1.VerdictError:
			return 0, v1alpha1.VerdictFail
		case v1alpha1.VerdictNoData:
			noData += w
			criticalNoData = criticalNoData || m.Critical
		default:
			if m.Critical {
				return 0, v1alpha1.VerdictFail
			}
		}
	}
	if total == 0 || criticalNoData || 2*noData >= total {
		return 0, v1alpha1.VerdictNoData
	}
	score := math.Round(10000*passed/(total-noData)) / 100
	switch {
	case score >= float64(pass):
		return score, v1alpha1.VerdictPass
	case score >= float64(marginal):
		return score, v1alpha1.VerdictMarginal
	}
	return score, v1alpha1.VerdictFail
}
