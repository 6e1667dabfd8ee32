package router

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Envoy compiles a header regex with Google's RE2 (C++) and refuses one
// whose compiled program is larger than a limit: the runtime key
// re2.max_program_size.error_level (default 100) or, where the route sets
// it, google_re2.max_program_size (Emissary sets it from its Module's
// regex_max_size, default 200). A refused regex is a refused route
// configuration, not an error anyone tells Sluice about, so routers that
// end in Envoy check the size before they write anything.
//
// RE2's program size cannot be computed without RE2; RE2ProgramSizeAtLeast
// gives a lower bound from Go's parse of the same syntax (Go's
// regexp/syntax is a port of RE2's parser, factoring of alternations
// included). Every instruction it counts is one RE2 must emit: one per
// byte of a literal, one per ASCII range of a character class (a range
// wholly inside A-Z may merge with its lower-case twin, so it is not
// counted when the class treats both cases alike), for a class's
// non-ASCII part one per UTF-8 length plus the chain of continuation
// bytes of the longest (. is such a class), each copy of a counted repetition, every branch of an
// alternation, and the match instruction. What it leaves out (the
// unanchored prefix loop, alternation and capture instructions, how
// Unicode ranges split by byte) only makes the real program larger, so a
// bound above the limit is a regex Envoy refuses. A regex under it may
// still be refused: that one is not caught here.

// RE2ProgramSizeAtLeast returns a number that RE2's program size for re
// (RE2::ProgramSize, what Envoy compares with its limit) is never below.
func RE2ProgramSizeAtLeast(re string) (int, error) {
	p, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", re, err)
	}
	// RE2 keeps the literal that follows a leading ^ (or several) out of
	// the program: it matches it as a prefix string.
	if p.Op == syntax.OpConcat && p.Sub[0].Op == syntax.OpBeginText {
		subs := p.Sub
		for len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
			subs = subs[1:]
		}
		if len(subs) > 0 && subs[0].Op == syntax.OpLiteral {
			subs = subs[1:]
		}
		p = &syntax.Regexp{Op: syntax.OpConcat, Sub: subs}
	}
	return 1 + atLeast(p), nil
}

// atLeast counts the byte instructions RE2 must emit for re (as parsed,
// repetitions not expanded).
func atLeast(re *syntax.Regexp) int {
	if never(re) {
		return 0
	}
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			n += utf8.RuneLen(r)
		}
		return n
	case syntax.OpCharClass:
		return classAtLeast(re.Rune)
	case syntax.OpAnyChar:
		return classAtLeast([]rune{0, utf8.MaxRune})
	case syntax.OpAnyCharNotNL:
		return classAtLeast([]rune{0, '\n' - 1, '\n' + 1, utf8.MaxRune})
	case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return atLeast(re.Sub[0])
	case syntax.OpRepeat:
		return copies(re.Min, re.Max) * atLeast(re.Sub[0])
	case syntax.OpAlternate:
		n := 0
		for _, s := range re.Sub {
			n += atLeast(s)
		}
		return n
	case syntax.OpConcat:
		return concatAtLeast(re.Sub)
	}
	return 0
}

// copies is how many copies of x RE2 compiles for x{lo,hi} (hi -1:
// unbounded): x{n,m} becomes m copies (n required, the rest optional),
// x{n,} n-1 copies and x+, x{0,} x*.
func copies(lo, hi int) int {
	if hi >= 0 {
		return hi
	}
	return max(lo, 1)
}

// bounds are the repetition counts of a star, plus, quest or counted
// repetition (hi -1: unbounded); ok is false for anything else.
func bounds(re *syntax.Regexp) (lo, hi int, ok bool) {
	switch re.Op {
	case syntax.OpStar:
		return 0, -1, true
	case syntax.OpPlus:
		return 1, -1, true
	case syntax.OpQuest:
		return 0, 1, true
	case syntax.OpRepeat:
		return re.Min, re.Max, true
	}
	return 0, 0, false
}

// run is a stretch of a concatenation repeating one single-character
// atom between lo and hi times (hi -1: unbounded).
type run struct {
	atom   *syntax.Regexp
	lo, hi int
}

// concatAtLeast counts a concatenation's instructions. RE2 simplifies
// a*a+, .{5,6}.* and the like into one repetition of the atom (a{1,},
// .{5,}), which compiles to fewer copies than the parts; so runs of the
// same atom (a literal's characters included) are counted as one
// repetition, bounds added up. Counting more of them as one than RE2
// does only lowers the bound.
func concatAtLeast(subs []*syntax.Regexp) int {
	n := 0
	var cur *run
	flush := func() {
		if cur != nil {
			n += copies(cur.lo, cur.hi) * atLeast(cur.atom)
			cur = nil
		}
	}
	add := func(atom *syntax.Regexp, lo, hi int) {
		if cur == nil || !sameAtom(cur.atom, atom) {
			flush()
			cur = &run{atom: atom, lo: lo, hi: hi}
			return
		}
		cur.lo += lo
		if cur.hi < 0 || hi < 0 {
			cur.hi = -1
		} else {
			cur.hi += hi
		}
	}
	for _, s := range subs {
		if s.Op == syntax.OpLiteral {
			for _, r := range s.Rune {
				add(&syntax.Regexp{Op: syntax.OpLiteral, Rune: []rune{r}, Flags: s.Flags}, 1, 1)
			}
			continue
		}
		if single(s) {
			add(s, 1, 1)
			continue
		}
		if lo, hi, ok := bounds(s); ok && single(s.Sub[0]) {
			add(s.Sub[0], lo, hi)
			continue
		}
		flush()
		n += atLeast(s)
	}
	flush()
	return n
}

// single says whether re matches exactly one character.
func single(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) == 1
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return true
	}
	return false
}

// sameAtom says whether two single-character regexps are the same (case
// folding matters to a literal only: a class has its folded ranges).
func sameAtom(a, b *syntax.Regexp) bool {
	fold := a.Op == syntax.OpLiteral && a.Flags&syntax.FoldCase != b.Flags&syntax.FoldCase
	return a.Op == b.Op && !fold && slices.Equal(a.Rune, b.Rune)
}

// never says whether re can match nothing at all: RE2 compiles such a
// part, and a concatenation holding it, to a failure.
func never(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpNoMatch:
		return true
	case syntax.OpCharClass:
		return len(re.Rune) == 0
	case syntax.OpCapture, syntax.OpPlus:
		return never(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min > 0 && never(re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if never(s) {
				return true
			}
		}
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if !never(s) {
				return false
			}
		}
		return true
	}
	return false
}

// classAtLeast counts a character class's instructions (ranges as pairs
// lo, hi, sorted, as Go's parser leaves them).
func classAtLeast(ranges []rune) int {
	// A class that treats A-Z as it treats a-z matches ASCII letters
	// case-insensitively: RE2 drops its ranges inside A-Z.
	foldsASCII := true
	for c := 'A'; c <= 'Z'; c++ {
		foldsASCII = foldsASCII && inClass(ranges, c) == inClass(ranges, c+'a'-'A')
	}
	n, lengths, longest := 0, map[int]bool{}, 0
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		if lo < utf8.RuneSelf && !(foldsASCII && lo >= 'A' && hi <= 'Z') {
			n++
		}
		if hi < utf8.RuneSelf {
			continue
		}
		for _, edge := range [][2]rune{{0x80, 0x7FF}, {0x800, 0xFFFF}, {0x10000, utf8.MaxRune}} {
			if lo <= edge[1] && hi >= edge[0] {
				l := utf8.RuneLen(edge[0])
				lengths[l] = true
				longest = max(longest, l)
			}
		}
	}
	if longest > 0 {
		n += len(lengths) + longest - 1
	}
	return n
}

func inClass(ranges []rune, r rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] <= r && r <= ranges[i+1] {
			return true
		}
	}
	return false
}

// HeaderRegexProblem runs check on each header regex of a Canary's
// steps, in order, and returns v1alpha1.ReasonInvalidHeaderRegex and a
// message naming the first one it refuses (the field, then check's
// words), or two empty strings.
func HeaderRegexProblem(c *v1alpha1.Canary, check func(re string) error) (reason, message string) {
	for i, s := range c.Spec.Strategy.Steps {
		if s.SetHeaderRoute == nil {
			continue
		}
		for j, m := range s.SetHeaderRoute.Match {
			if m.Regex == nil {
				continue
			}
			if err := check(*m.Regex); err != nil {
				return v1alpha1.ReasonInvalidHeaderRegex, fmt.Sprintf("spec.strategy.steps[%d].setHeaderRoute.match[%d].regex: %v", i, j, err)
			}
		}
	}
	return "", ""
}

// SyntaxOK refuses a regex Go's regexp cannot compile: what the CRD
// admits now, checked again for Canaries stored before it did.
func SyntaxOK(re string) error {
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Errorf("%w; the route would not load: correct it", err)
	}
	return nil
}

// ProgramSizeAtMost refuses a regex whose RE2 program is surely above an
// Envoy limit. setting says what raises the limit.
func ProgramSizeAtMost(limit int, setting string) func(re string) error {
	return func(re string) error {
		size, err := RE2ProgramSizeAtLeast(re)
		if err != nil {
			return fmt.Errorf("%w; the route would not load: correct it", err)
		}
		if size > limit {
			return fmt.Errorf("%q compiles to an RE2 program of at least %d instructions, and Envoy refuses a route whose regex is above %d: "+
				"simplify it (fewer repetitions, a shorter alternation, ASCII classes rather than \\p{...}) or, if your proxies accept more, raise %s", re, size, limit, setting)
		}
		return nil
	}
}
