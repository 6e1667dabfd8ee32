package router

// PhaseWeights splits a phase's share (percent) between its backends by
// their relative weights, in basis points (share×100), by largest
// remainder, so the phase's backend weights always add up to exactly
// share×100 and the two phases' weights to 10000.
func PhaseWeights(share int32, backends []Backend) []int32 {
	out := make([]int32, len(backends))
	if len(backends) == 0 {
		return out
	}
	var sum int64
	for _, b := range backends {
		sum += int64(b.Weight)
	}
	total := int64(share) * 100
	if sum == 0 {
		// All relative weights are 0: the phase gets nothing.
		return out
	}
	type rem struct {
		i int
		r int64
	}
	rems := make([]rem, len(backends))
	var given int64
	for i, b := range backends {
		q := total * int64(b.Weight)
		out[i] = int32(q / sum)
		given += int64(out[i])
		rems[i] = rem{i, q % sum}
	}
	// Hand out the rounding remainder, largest remainders first (stable:
	// earlier backends win ties).
	for left := total - given; left > 0; left-- {
		best := -1
		for j := range rems {
			if backends[rems[j].i].Weight == 0 {
				continue
			}
			if best < 0 || rems[j].r > rems[best].r {
				best = j
			}
		}
		out[rems[best].i]++
		rems[best].r = -1
	}
	return out
}
