package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// `sluice --version` of a binary built by `make build` prints what the
// Makefile stamped; of a plain `go build`, the commit the Go toolchain
// recorded.
func TestVersionFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "TZ=UTC")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	head := git("rev-parse", "HEAD")
	version := func(bin string) string {
		t.Helper()
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", bin, err, out)
		}
		return strings.TrimSpace(string(out))
	}

	t.Run("make build", func(t *testing.T) {
		// The Makefile's own command line for the controller, run as make
		// would run it.
		bin := t.TempDir()
		cmd := exec.Command("make", "-s", "-n", "build", "BIN="+bin)
		cmd.Dir = root
		recipe, err := cmd.Output()
		if err != nil {
			t.Fatalf("make -n build: %v", err)
		}
		var line string
		for l := range strings.Lines(string(recipe)) {
			if strings.HasSuffix(strings.TrimSpace(l), "./cmd/sluice") {
				line = strings.TrimSpace(l)
			}
		}
		if line == "" {
			t.Fatalf("no build of ./cmd/sluice in make -n build:\n%s", recipe)
		}
		build := exec.Command("bash", "-c", line)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		date := git("show", "-s", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "HEAD")
		want := "sluice " + git("describe", "--tags", "--always", "--dirty") + " (commit " + head + ", " + date + ", go"
		if got := version(filepath.Join(bin, "sluice")); !strings.HasPrefix(got, want) {
			t.Errorf("got  %s\nwant %s...", got, want)
		}
	})

	t.Run("go build", func(t *testing.T) {
		// The Go toolchain records the commit only when .git is a
		// directory (not in a git worktree, whose .git is a file).
		if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
			t.Skip("not a git checkout of its own (a worktree?): go build records no commit here")
		}
		bin := filepath.Join(t.TempDir(), "sluice")
		build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
		// Go records a pseudo-version of the commit as the module's
		// version (v0.0.0-<commit time>-<hash>[+dirty]).
		got := version(bin)
		if !regexp.MustCompile(`^sluice v0\.0\.0-[0-9]{14}-` + head[:12] + `(\+dirty)? \(commit ` + head + `[ ,]`).MatchString(got) {
			t.Errorf("got %s, want the commit %s from the build info", got, head)
		}
	})
}
