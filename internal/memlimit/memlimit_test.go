package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func write(t *testing.T, root, file, content string) {
	t.Helper()
	p := filepath.Join(root, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The cgroup files are written in a temporary folder: the test machine's
// own cgroup may have any limit, or none.
func TestRead(t *testing.T) {
	for name, tc := range map[string]struct {
		file, content string
		want          int64
		ok, fails     bool
	}{
		"v2 limit":     {"memory.max", "536870912\n", 512 << 20, true, false},
		"v2 unlimited": {"memory.max", "max\n", 0, false, false},
		"v1 limit":     {"memory/memory.limit_in_bytes", "268435456\n", 256 << 20, true, false},
		"v1 unlimited": {"memory/memory.limit_in_bytes", "9223372036854771712\n", 0, false, false},
		"no cgroup":    {"", "", 0, false, false},
		"garbage":      {"memory.max", "lots\n", 0, false, true},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if tc.file != "" {
				write(t, root, tc.file, tc.content)
			}
			got, ok, err := Read(root)
			if (err != nil) != tc.fails || got != tc.want || ok != tc.ok {
				t.Errorf("Read = %d, %v, %v; want %d, %v, error %v", got, ok, err, tc.want, tc.ok, tc.fails)
			}
		})
	}
}

func TestApply(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	root := t.TempDir()
	write(t, root, "memory.max", "536870912\n")
	noEnv := func(string) string { return "" }

	set, why, err := Apply(root, 0.9, noEnv)
	if err != nil || set != int64(math.Floor(0.9*(512<<20))) {
		t.Fatalf("Apply = %d, %q, %v; want 90%% of 512 MiB", set, why, err)
	}
	if got := debug.SetMemoryLimit(-1); got != set {
		t.Errorf("runtime memory limit %d, want %d", got, set)
	}

	debug.SetMemoryLimit(prev)
	if set, why, _ := Apply(root, 0.9, func(k string) string {
		if k == "GOMEMLIMIT" {
			return "300MiB"
		}
		return ""
	}); set != 0 || why != "GOMEMLIMIT is set" {
		t.Errorf("with GOMEMLIMIT set: Apply = %d, %q; want nothing set", set, why)
	}
	if set, _, _ := Apply(root, 0, noEnv); set != 0 {
		t.Errorf("ratio 0 set %d", set)
	}
	if _, _, err := Apply(root, 1.5, noEnv); err == nil {
		t.Error("ratio 1.5 accepted")
	}
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Errorf("runtime memory limit changed to %d where nothing was to be set", got)
	}
}

func TestGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	noEnv := func(string) string { return "" }

	if set, _, err := GCPercent(50, noEnv); err != nil || set != 50 {
		t.Fatalf("GCPercent(50) = %d, %v; want 50 set", set, err)
	}
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("runtime GC percent %d, want 50", got)
	}
	if set, why, _ := GCPercent(50, func(k string) string {
		if k == "GOGC" {
			return "200"
		}
		return ""
	}); set != 0 || why != "GOGC is set" {
		t.Errorf("with GOGC set: GCPercent = %d, %q; want nothing set", set, why)
	}
	if set, _, _ := GCPercent(0, noEnv); set != 0 {
		t.Errorf("percent 0 set %d", set)
	}
	if _, _, err := GCPercent(-5, noEnv); err == nil || !strings.Contains(err.Error(), "--gc-percent") {
		t.Errorf("percent -5: error %v, want one naming --gc-percent", err)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("runtime GC percent changed to %d where nothing was to be set", got)
	}
}
