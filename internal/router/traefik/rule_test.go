package traefik_test

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router/traefik"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// The rule tests ask Traefik itself: bin/rulecheck is built from Traefik
// v3.6.12's own rule parser and HTTP matcher (hack/traefik, built by
// `hack/traefik.sh build rulecheck`, which `make test` runs). Nothing here
// re-implements Traefik's grammar.

type ruleChecker struct {
	t   testing.TB
	in  *json.Encoder
	out *bufio.Scanner
}

type ruleAnswer struct {
	Matched bool   `json:"matched"`
	Error   string `json:"error"`
}

func newRuleChecker(t testing.TB) *ruleChecker {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", "rulecheck")
	if _, err := os.Stat(bin); err != nil {
		if testing.Short() {
			t.Skip("bin/rulecheck not built (hack/traefik.sh build rulecheck)")
		}
		t.Fatalf("bin/rulecheck: %v: build it with hack/traefik.sh build rulecheck (make test does)", err)
	}
	cmd := exec.Command(bin)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return &ruleChecker{t: t, in: json.NewEncoder(stdin), out: sc}
}

// ask returns Traefik's answer: does the rule parse, and does it match a
// request carrying headers.
func (rc *ruleChecker) ask(rule, syntax, host string, headers ...[2]string) ruleAnswer {
	rc.t.Helper()
	// Bytes, not strings: JSON would replace invalid UTF-8.
	hs := make([][2][]byte, 0, len(headers))
	for _, h := range headers {
		hs = append(hs, [2][]byte{[]byte(h[0]), []byte(h[1])})
	}
	if err := rc.in.Encode(map[string]any{"rule": []byte(rule), "syntax": syntax, "host": host, "headers": hs}); err != nil {
		rc.t.Fatal(err)
	}
	if !rc.out.Scan() {
		rc.t.Fatalf("rulecheck stopped: %v", rc.out.Err())
	}
	var a ruleAnswer
	if err := json.Unmarshal(rc.out.Bytes(), &a); err != nil {
		rc.t.Fatal(err)
	}
	return a
}

var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+\\-.^_`|~]+$") // the CRD's pattern

// checkHeaderValue asserts, for one header name and value, in both
// syntaxes: the rule Sluice writes parses; an exact match matches exactly
// that value and not a longer or a different one; a regex made of the
// quoted value matches the value and nothing around it. (A regex must be
// valid UTF-8, as every string the apiserver stores is: the regex cases
// run only for such values; the exact cases run for any bytes.)
func checkHeaderValue(rc *ruleChecker, name, value string) {
	rc.t.Helper()
	base := "PathPrefix(`/`)"
	other := value + "x"
	for _, syntax := range []string{traefik.SyntaxV3, traefik.SyntaxV2} {
		exact := traefik.NarrowRule(base, &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: name, Exact: &value}}}, syntax)
		re := regexp.QuoteMeta(value)
		regex := traefik.NarrowRule(base, &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: name, Regex: &re}}}, syntax)
		for _, tc := range []struct {
			kind, rule string
			headers    [][2]string
			want       bool
		}{
			{"exact", exact, [][2]string{{name, value}}, true},
			{"exact", exact, [][2]string{{name, other}}, false},
			{"exact", exact, [][2]string{{"X-Unrelated", value}}, false},
			{"exact", exact, nil, false},
			{"regex", regex, [][2]string{{name, value}}, true},
			{"regex", regex, [][2]string{{name, other}}, false},
			{"regex", regex, [][2]string{{name, "x" + value}}, false},
			{"regex", regex, nil, false},
		} {
			if tc.kind == "regex" && !utf8.ValidString(value) {
				continue
			}
			got := rc.ask(tc.rule, syntax, "", tc.headers...)
			if got.Error != "" {
				rc.t.Fatalf("%s %s rule for %q=%q: Traefik refuses %s: %s", syntax, tc.kind, name, value, tc.rule, got.Error)
			}
			if got.Matched != tc.want {
				rc.t.Fatalf("%s %s rule %s with headers %q: matched=%v, want %v", syntax, tc.kind, tc.rule, tc.headers, got.Matched, tc.want)
			}
		}
	}
}

var ruleSeeds = [][2]string{
	{"X-Canary", "yes"},
	{"X-Canary", "with spaces  and\ttabs"},
	{"x.dotted.name", "a.b.c"},
	{"X_Under_Score", "snake_case_value"},
	{"X-Quote", `say "hi" and 'bye'`},
	{"X-Backtick", "`rm -rf`"},
	{"X`Tick", "back`tick`name"},
	{"X-Backslash", `C:\path\n\t\\`},
	{"X-Parens", "a) || Host(`evil`) && (b"},
	{"X-Unicode", "café ☕ 日本語 🚀"},
	{"X-Control", "new\nline\r\x00nul"},
	{"X-Invalid-UTF8", "\xff\xfe\xc3"},
	{"X-BOM", "\ufeffbom"},
	{"X-Regex", "^.*+?()[]{}|$"},
	{"X-Percent", "%s %v %% %2F"},
	{"!#$%&'*+-.^_`|~", "all token chars"},
}

// FuzzHeaderRule: `go test ./internal/router/traefik -run '^$' -fuzz FuzzHeaderRule`
// explores further; `go test` runs the seeds.
func FuzzHeaderRule(f *testing.F) {
	for _, s := range ruleSeeds {
		f.Add(s[0], s[1])
	}
	rc := newRuleChecker(f)
	f.Fuzz(func(t *testing.T, name, value string) {
		if !headerName.MatchString(name) || len(name) > 256 || value == "" || len(value) > 1024 {
			t.Skip("not admitted by the CRD")
		}
		rc.t = t
		checkHeaderValue(rc, name, value)
	})
}

// TestHeaderRuleRandomValues runs 300 random values (bytes, ASCII
// punctuation and unicode mixed) through Traefik on every `go test`, so
// CI covers more than the fuzz seeds. The seed differs on every run and is
// logged (shown with a failure, or with -v); SLUICE_RULE_SEED=<seed>
// repeats a run.
func TestHeaderRuleRandomValues(t *testing.T) {
	rc := newRuleChecker(t)
	seed := rand.Uint64()
	if v := os.Getenv("SLUICE_RULE_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SLUICE_RULE_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d: SLUICE_RULE_SEED=%d go test -run TestHeaderRuleRandomValues ./internal/router/traefik repeats this run", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	alphabet := []rune("aZ09 \t.\"'`\\()&|!$^*+?[]{}_-%/:;,<>=~#@é☕日🚀\x00\x7f\u00a0\u2028\ufeff")
	for i := 0; i < 300; i++ {
		var b strings.Builder
		for n := 1 + rng.IntN(24); n > 0; n-- {
			if rng.IntN(10) == 0 {
				b.WriteByte(byte(rng.IntN(256))) // raw bytes, valid UTF-8 or not
				continue
			}
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		checkHeaderValue(rc, "X-Random", b.String())
	}
}

// Several matches are joined with &&: a request needs all of them.
func TestHeaderRuleAllMatchesNeeded(t *testing.T) {
	rc := newRuleChecker(t)
	beta, re := "beta", "(ios|android)-[0-9]+"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Channel", Exact: &beta}, {Name: "User-Agent", Regex: &re}}}
	for _, syntax := range []string{traefik.SyntaxV3, traefik.SyntaxV2} {
		rule := traefik.NarrowRule("Host(`shop.example`)", hr, syntax)
		for _, tc := range []struct {
			headers [][2]string
			want    bool
		}{
			{[][2]string{{"X-Channel", "beta"}, {"User-Agent", "ios-17"}}, true},
			{[][2]string{{"x-channel", "beta"}, {"user-agent", "android-14"}}, true},
			{[][2]string{{"X-Channel", "beta"}, {"User-Agent", "ios-17 Safari"}}, false},
			{[][2]string{{"X-Channel", "beta"}}, false},
			{[][2]string{{"User-Agent", "android-14"}}, false},
		} {
			got := rc.ask(rule, syntax, "shop.example", tc.headers...)
			if got.Error != "" || got.Matched != tc.want {
				t.Errorf("%s: %s with %q: %+v, want matched=%v", syntax, rule, tc.headers, got, tc.want)
			}
		}
	}
}

// A regex may end inside a \Q quote (the quote then runs to its end): RE2
// and Go take `\Qa.b` as the literal a.b. The anchored form must close the
// quote, or its ")$" is quoted too and Traefik refuses the rule.
func TestHeaderRuleRegexEndingInAQuote(t *testing.T) {
	rc := newRuleChecker(t)
	for _, tc := range []struct{ re, match, other string }{
		{`\Qa.b`, "a.b", "axb"},
		{`v[0-9]\Q(beta`, "v1(beta", "v1(betax"},
		{`\Qa\E.\Q)$`, "a-)$", "a-)"},
		{`\\Q.`, `\Qx`, `\Q`},
	} {
		for _, syntax := range []string{traefik.SyntaxV3, traefik.SyntaxV2} {
			rule := traefik.NarrowRule("PathPrefix(`/`)", &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Q", Regex: &tc.re}}}, syntax)
			for value, want := range map[string]bool{tc.match: true, tc.other: false} {
				got := rc.ask(rule, syntax, "", [2]string{"X-Q", value})
				if got.Error != "" || got.Matched != want {
					t.Errorf("%s %s with X-Q=%q: %+v, want matched=%v", syntax, rule, value, got, want)
				}
			}
		}
	}
}

// Check refuses, before anything is written, a header regex Traefik
// would not compile as Sluice writes it (Canaries stored before the CRD
// checked regexes); an open \Q quote is not one.
func TestHeaderRegexProblem(t *testing.T) {
	c := &v1alpha1.Canary{}
	for re, want := range map[string]string{
		`\Qa.b`:      "",
		`beta|gamma`: "",
		`(?!beta)`:   "spec.strategy.steps[0].setHeaderRoute.match[0].regex: Traefik would refuse it anchored as ^(?:(?!beta))$: error parsing regexp: invalid or unsupported Perl syntax",
	} {
		c.Spec.Strategy.Steps = []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-A", Regex: &re}}}}}
		reason, msg := traefik.HeaderRegexProblem(c)
		if (want == "") != (reason == "") || !strings.Contains(msg, want) || (want != "" && reason != "InvalidHeaderRegex") {
			t.Errorf("%s: %q %q, want %q", re, reason, msg, want)
		}
	}
}
