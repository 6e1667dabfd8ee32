// Package demo runs the playground (`make demo`, hack/demo.sh) the way a new
// user does, non-interactively, and checks its outcome: the good release is
// promoted and the bad one rolled back.
package demo_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// runDemo runs hack/demo.sh with args as a user would, non-interactively,
// and returns its output; a failed run fails the test.
func runDemo(t *testing.T, args ...string) *bytes.Buffer {
	t.Helper()
	c := testenv.Get(t) // the same cluster make demo starts
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(c.Root, "hack", "demo.sh")}, args...)...)
	cmd.Dir = c.Root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}
	return &out
}

func TestDemoPromotesTheGoodReleaseAndRollsBackTheBadOne(t *testing.T) {
	out := runDemo(t)
	// The good release promoted with no request failing, the bad one
	// rolled back by the analysis, and each shown step by step with the
	// traffic measured.
	for _, re := range []string{
		`release 6\.7\.1: Succeeded .* answered by 6\.7\.1, +0 failed as users saw them`,
		`release 6\.7\.2: Failed .*AnalysisFailed`,
		`weight +10%`, `weight +30%`, `weight +60%`,
		`answered by 6\.7\.1 \(canary weight set: 30%\)`,
		`requests through Traefik during the releases`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("demo output does not match %q", re)
		}
	}
}

// The blue/green scenario (make demo SCENARIO=blue-green): the good
// release previewed, switched to and promoted with no request failing; the
// bad one switched back by the analysis in the scale-down delay.
func TestDemoBlueGreen(t *testing.T) {
	out := runDemo(t, "--scenario", "blue-green")
	for _, re := range []string{
		`release 6\.7\.1: Succeeded .* answered by 6\.7\.1, +0 failed as users saw them`,
		`release 6\.7\.2: Failed .*AnalysisFailed`,
		`step 0/3 .*previewing revision \w+ for 10s before the switch`,
		`0\.0% answered by 6\.7\.1 \(canary weight set: 0%\)`,
		`step 2/3 .*the old copy keeps running for 30s \(scale-down delay\)`,
		`100\.0% answered by 6\.7\.1 \(canary weight set: 100%\)`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("demo output does not match %q", re)
		}
	}
}
