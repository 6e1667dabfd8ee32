package traefik

import (
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/api/v1alpha1"
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
	parts := make([]string, 0, len(hr.Match))
	for _, m := range hr.Match {
		switch {
		case m.Exact != nil:
			parts = append(parts, exactFn+"("+strconv.Quote(m.Name)+", "+strconv.Quote(*m.Exact)+")")
		case m.Regex != nil:
			parts = append(parts, regexFn+"("+strconv.Quote(m.Name)+", "+strconv.Quote(AnchorRegex(*m.Regex))+")")
		}
	}
	return strings.Join(parts, " && ")
}

// AnchorRegex makes a regex match a whole value.
func AnchorRegex(re string) string { return "^(?:" + re + ")$" }

// NarrowRule is a route's rule narrowed to the requests of a header route.
func NarrowRule(base string, hr *v1alpha1.HeaderRoute, syntax string) string {
	h := HeaderRule(hr, syntax)
	if strings.TrimSpace(base) == "" {
		return h
	}
	return "(" + base + ") && " + h
}
