package traefik

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
)

// Rule syntaxes.
const (
	SyntaxV2 = "v2"
	SyntaxV3 = "v3"
)

// HeaderRule is the part of a Traefik rule that matches a header route:
// every match joined by &&. Traefik parses a rule as a Go expression and
// its string arguments with Go's unquoting, so each name and value is
// written as a Go double-quoted literal (strconv.Quote): any byte, quote,
// backtick or newline comes back exactly. A regex is anchored at both ends,
// since Traefik's header regexps match anywhere in the value while a
// header route's regex must match all of it. Syntax v3 uses Header and
// HeaderRegexp; v2 uses Headers and HeadersRegexp.
func HeaderRule(hr *v1alpha1.HeaderRoute, syntax string) string {
	exactFn, regexFn := "Header", "HeaderRegexp"
	if syntax == SyntaxV2 {
		exactFn, regexFn = "Headers", "HeadersRegexp"
	}
	headers := hr.Headers()
	parts := make([]string, 0, len(headers))
	for _, m := range headers {
		switch {
		case m.Exact != nil:
			parts = append(parts, exactFn+"("+strconv.Quote(m.Name)+", "+strconv.Quote(*m.Exact)+")")
		case m.Regex != nil:
			parts = append(parts, regexFn+"("+strconv.Quote(m.Name)+", "+strconv.Quote(AnchorRegex(*m.Regex))+")")
		}
	}
	return strings.Join(parts, " && ")
}

// AnchorRegex makes a regex match a whole value. A \Q quote that the
// regex leaves open runs to its end, so it is closed first: the anchoring
// ")$" would be quoted too, and Traefik would refuse the rule.
func AnchorRegex(re string) string {
	if openQuote(re) {
		re += `\E`
	}
	return "^(?:" + re + ")$"
}

// openQuote says whether re ends inside a \Q...\E quote: one \Q with no
// \E after it (a quote ends at the first \E; any other backslash escapes
// the byte after it).
func openQuote(re string) bool {
	for i := 0; i+1 < len(re); i++ {
		if re[i] != '\\' {
			continue
		}
		if re[i+1] != 'Q' {
			i++
			continue
		}
		end := strings.Index(re[i+2:], `\E`)
		if end < 0 {
			return true
		}
		i += 2 + end + 1
	}
	return false
}

// HeaderRegexProblem reports a header regex Traefik would refuse, as
// Sluice writes it (anchored): Traefik compiles it with Go's regexp and
// drops a router whose rule does not compile, without a word to Sluice.
func HeaderRegexProblem(c *v1alpha1.Canary) (reason, message string) {
	return router.HeaderRegexProblem(c, func(re string) error {
		if _, err := regexp.Compile(AnchorRegex(re)); err != nil {
			return fmt.Errorf("Traefik would refuse it anchored as %s: %w; correct it", AnchorRegex(re), err)
		}
		return nil
	})
}

// NarrowRule is a route's rule narrowed to the requests of a header route.
func NarrowRule(base string, hr *v1alpha1.HeaderRoute, syntax string) string {
	h := HeaderRule(hr, syntax)
	if strings.TrimSpace(base) == "" {
		return h
	}
	return "(" + base + ") && " + h
}
