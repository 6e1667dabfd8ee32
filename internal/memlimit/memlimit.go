// Package memlimit sets the Go runtime's soft memory limit from the
// container's memory limit, so that the garbage collector works harder as
// the process nears the limit instead of letting the heap grow to twice
// what is live and the container be killed for it.
package memlimit

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Unlimited values: cgroup v2 writes "max"; cgroup v1 writes a number
// near the largest int64 rounded down to the page size.
const v1Unlimited = int64(1) << 62

// Read returns the memory limit of the cgroup the process runs in, read
// below root (normally /sys/fs/cgroup): cgroup v2's memory.max, else
// cgroup v1's memory/memory.limit_in_bytes. ok is false when there is no
// limit or no such file.
func Read(root string) (limit int64, ok bool, err error) {
	for _, f := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("read cgroup memory limit: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("cgroup memory limit %s=%q: %w", f, v, err)
		}
		if n <= 0 || n >= v1Unlimited {
			return 0, false, nil
		}
		return n, true, nil
	}
	return 0, false, nil
}

// Apply sets the runtime's soft memory limit to ratio times the cgroup's
// memory limit and returns what it set (0 when it set nothing) and why.
// It sets nothing when GOMEMLIMIT is in the environment (the runtime has
// applied it already), when ratio is 0, or when there is no limit or it
// cannot be read. Only a ratio outside [0, 1] is an error.
func Apply(root string, ratio float64, getenv func(string) string) (int64, string, error) {
	switch {
	case getenv("GOMEMLIMIT") != "":
		return 0, "GOMEMLIMIT is set", nil
	case ratio == 0:
		return 0, "disabled", nil
	case ratio < 0 || ratio > 1:
		return 0, "", fmt.Errorf("--memory-limit-ratio=%v: use a fraction between 0 (off) and 1", ratio)
	}
	limit, ok, err := Read(root)
	switch {
	case err != nil: // not a reason to stop: the controller runs as before
		return 0, err.Error(), nil
	case !ok:
		return 0, "no container memory limit", nil
	}
	soft := int64(math.Floor(float64(limit) * ratio))
	debug.SetMemoryLimit(soft)
	return soft, fmt.Sprintf("%.0f%% of the container's %d MiB", ratio*100, limit>>20), nil
}

// GCPercent sets the collector's target: the heap may grow percent over
// what was live after the last collection before the next one starts (the
// runtime's default is 100, which lets a controller whose caches are most
// of its heap hold about twice their size). It returns what it set (0
// when it set nothing) and why. The GOGC environment variable wins, as
// GOMEMLIMIT does for Apply; 0 leaves the runtime's default.
func GCPercent(percent int, getenv func(string) string) (int, string, error) {
	switch {
	case getenv("GOGC") != "":
		return 0, "GOGC is set", nil
	case percent == 0:
		return 0, "the runtime's default", nil
	case percent < 0:
		return 0, "", fmt.Errorf("--gc-percent=%d: use a percentage above 0 (100 is the Go runtime's default), or 0 to keep the runtime's", percent)
	}
	debug.SetGCPercent(percent)
	return percent, "--gc-percent", nil
}
