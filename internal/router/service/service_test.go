package service_test

import (
	"math"
	"testing"

	"github.com/sluice-dev/sluice/internal/router/service"
)

// TestCounts checks the endpoint choice against its statement, for every
// weight and every Ready count up to 12 a side: the side with the larger
// share lists all its endpoints; the other lists at least one and at most
// all of its own; and no other count of the smaller side, within those
// bounds, brings the canary's share closer to the weight.
func TestCounts(t *testing.T) {
	for p := 0; p <= 12; p++ {
		for c := 0; c <= 12; c++ {
			for w := int32(0); w <= 100; w++ {
				np, nc := service.Counts(w, p, c)
				share := func(np, nc int) float64 { return 100 * float64(nc) / float64(np+nc) }
				switch {
				case w == 0 || c == 0:
					if np != p || nc != 0 {
						t.Fatalf("w=%d p=%d c=%d: got %d/%d, want all primary", w, p, c, np, nc)
					}
					continue
				case w == 100 || p == 0:
					if np != 0 || nc != c {
						t.Fatalf("w=%d p=%d c=%d: got %d/%d, want all canary", w, p, c, np, nc)
					}
					continue
				}
				if np < 1 || nc < 1 || np > p || nc > c {
					t.Fatalf("w=%d p=%d c=%d: got %d primary, %d canary: out of 1..Ready", w, p, c, np, nc)
				}
				got := math.Abs(share(np, nc) - float64(w))
				if w <= 50 {
					if np != p {
						t.Fatalf("w=%d p=%d c=%d: the primary (larger share) lists %d of %d", w, p, c, np, p)
					}
					for n := 1; n <= c; n++ {
						if d := math.Abs(share(p, n) - float64(w)); d < got-1e-9 {
							t.Fatalf("w=%d p=%d c=%d: %d canary endpoints give %.2f%%, %d would give %.2f%%", w, p, c, nc, share(np, nc), n, share(p, n))
						}
					}
				} else {
					if nc != c {
						t.Fatalf("w=%d p=%d c=%d: the canary (larger share) lists %d of %d", w, p, c, nc, c)
					}
					for n := 1; n <= p; n++ {
						if d := math.Abs(share(n, c) - float64(w)); d < got-1e-9 {
							t.Fatalf("w=%d p=%d c=%d: %d primary endpoints give %.2f%%, %d would give %.2f%%", w, p, c, np, share(np, nc), n, share(n, c))
						}
					}
				}
			}
		}
	}
}
