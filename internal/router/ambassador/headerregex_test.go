package ambassador_test

import (
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/ambassador"
)

// Emissary hands Envoy a header regex with google_re2.max_program_size set
// from its Module's regex_max_size (default 200), and Envoy refuses a
// larger program; Emissary then keeps its last good configuration. The
// router refuses such a regex before it writes anything (before it reads
// the Mappings), naming the field, and takes a raised limit from the
// Canary.
func TestCheckRefusesARegexEnvoyWouldRefuse(t *testing.T) {
	re := "[a-f0-9]{128}" // RE2 program size 260
	c := &v1alpha1.Canary{}
	c.Spec.Router.Ambassador = &v1alpha1.AmbassadorRouter{Mappings: []string{"web"}}
	c.Spec.Strategy.Steps = []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Trace", Regex: &re}}}}}
	ch, ok := any(&ambassador.Router{}).(router.Checker)
	if !ok {
		t.Fatal("the ambassador router checks nothing before it writes")
	}
	reason, msg, err := ch.Check(t.Context(), c)
	if err != nil || reason != "InvalidHeaderRegex" || !strings.Contains(msg, "spec.strategy.steps[0].setHeaderRoute.match[0].regex:") ||
		!strings.Contains(msg, "above 200") || !strings.Contains(msg, "spec.router.ambassador.regexMaxProgramSize") {
		t.Errorf("Check: %q %q %v", reason, msg, err)
	}
	c.Spec.Router.Ambassador.RegexMaxProgramSize = ptr.To(int32(1000))
	if reason, msg := ambassador.HeaderRegexProblem(c); reason != "" || msg != "" {
		t.Errorf("under a raised limit: %q %q", reason, msg)
	}
}
