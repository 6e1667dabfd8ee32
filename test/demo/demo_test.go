// Package demo runs the playground (`make demo`, hack/demo.sh) the way a new
// user does, non-interactively, and checks its outcome: the good release is
// promoted and the bad one rolled back.
package demo_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testenv"
)

func TestDemoPromotesTheGoodReleaseAndRollsBackTheBadOne(t *testing.T) {
	c := testenv.Get(t) // the same cluster make demo starts
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(c.Root, "hack", "demo.sh"))
	cmd.Dir = c.Root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}
	for _, want := range []string{
		"good release: Succeeded",
		"bad release:  Failed",
		"ProgressDeadlineExceeded",
		"primary now runs ghcr.io/stefanprodan/podinfo:6.7.1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// The progress was shown step by step, with the weights.
	for _, want := range []string{"weight  10%", "weight  30%", "weight  60%", "Promoted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo did not show %q", want)
		}
	}
}
