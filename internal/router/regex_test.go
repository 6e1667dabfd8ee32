package router_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
)

// re2Sizes are RE2's own program sizes (RE2::ProgramSize, the figure Envoy
// compares with its limit), measured with Google's RE2 20220601 (Debian's
// libre2-9) through `RE2 re(pattern, RE2::Quiet); re.ProgramSize()`.
var re2Sizes = []struct {
	re   string
	size int
}{
	{`beta`, 8},
	{`^beta$`, 4},
	{`(ios|android)-[0-9]+`, 19},
	{`[a-f0-9]{32}`, 68},
	{`[a-z0-9]{64}`, 132},
	{`[A-Za-z0-9+/]{40,}`, 125},
	{`[A-Z]{101}`, 105},
	{`[[:alpha:]]{60}`, 64},
	{`x{200}`, 204},
	{`.{5,6}.*`, 45},
	{`.*(iPhone|iPad|Android).*`, 37},
	{`(chrome|firefox|safari|edge|opera|brave|vivaldi|samsung)`, 53},
	{`(?i)tenant-(alpha|bravo|charlie|delta|echo|foxtrot|golf|hotel|india|juliett|kilo|lima|mike)`, 85},
	{`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`, 72},
	{`\pL+`, 1198},
}

// The bound never exceeds RE2's size, so a regex over a limit by the
// bound is over it for Envoy. (The same held for 120,000 random regexes
// checked against libre2 when it was written; \pL shows what it misses:
// how Unicode classes split into UTF-8 byte ranges.)
func TestRE2ProgramSizeAtLeastIsALowerBound(t *testing.T) {
	for _, tc := range re2Sizes {
		got, err := router.RE2ProgramSizeAtLeast(tc.re)
		if err != nil {
			t.Fatalf("%s: %v", tc.re, err)
		}
		if got > tc.size || got < 1 {
			t.Errorf("%s: bound %d, RE2's size %d", tc.re, got, tc.size)
		}
	}
	// Close where it matters: repetitions and alternations of ASCII.
	for _, tc := range []struct {
		re    string
		least int
	}{{`[a-z0-9]{64}`, 120}, {`x{200}`, 190}, {`[A-Za-z0-9+/]{40,}`, 101}, {`[A-Z]{101}`, 101}} {
		if got, _ := router.RE2ProgramSizeAtLeast(tc.re); got < tc.least {
			t.Errorf("%s: bound %d, want at least %d", tc.re, got, tc.least)
		}
	}
}

func headerCanary(regexes ...string) *v1alpha1.Canary {
	c := &v1alpha1.Canary{}
	yes := "yes"
	c.Spec.Strategy.Steps = []v1alpha1.Step{{SetWeight: new(int32)}}
	for _, re := range regexes {
		c.Spec.Strategy.Steps = append(c.Spec.Strategy.Steps, v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{
			Match: []v1alpha1.HeaderMatch{{Name: "X-A", Exact: &yes}, {Name: "X-B", Regex: &re}}}})
	}
	return c
}

func TestHeaderRegexProblem(t *testing.T) {
	check := router.ProgramSizeAtMost(100, "the limit")
	if reason, msg := router.HeaderRegexProblem(headerCanary(`beta`, `[a-f0-9]{32}`), check); reason != "" || msg != "" {
		t.Errorf("regexes under the limit: %s %s", reason, msg)
	}
	reason, msg := router.HeaderRegexProblem(headerCanary(`beta`, `[a-z0-9]{64}`), check)
	for _, want := range []string{"spec.strategy.steps[2].setHeaderRoute.match[1].regex:", "at least 129", "above 100", "raise the limit"} {
		if reason != v1alpha1.ReasonInvalidHeaderRegex || !strings.Contains(msg, want) {
			t.Errorf("%s %s: want %q", reason, msg, want)
		}
	}
	// Canaries stored before the CRD checked the syntax.
	reason, msg = router.HeaderRegexProblem(headerCanary(`(?!beta)`), router.SyntaxOK)
	if reason != v1alpha1.ReasonInvalidHeaderRegex || !strings.Contains(msg, "spec.strategy.steps[1].setHeaderRoute.match[1].regex: error parsing regexp: invalid or unsupported Perl syntax") {
		t.Errorf("%s %s", reason, msg)
	}
}
