// Package version says which source the binaries were built from. `make
// build` stamps it with -ldflags -X (see the Makefile's LDFLAGS); a plain
// `go build` or `go install` leaves the Go toolchain's own record of the
// checkout (runtime/debug.ReadBuildInfo: vcs.revision, vcs.time,
// vcs.modified), which Get falls back to.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at link time by -ldflags "-X <this package>.Version=..." and never
// written afterwards. Empty when the build did not set them.
var (
	// Version is the release tag, or `git describe --tags --always
	// --dirty` between releases (v0.3.0-12-g1a2b3c4-dirty).
	Version string
	// Commit is the full commit hash (`git rev-parse HEAD`).
	Commit string
	// Date is the commit's time in UTC, RFC 3339: not the time of the
	// build, so that the same commit builds the same binary.
	Date string
)

// Info is what a binary knows of its source.
type Info struct {
	Version string
	Commit  string
	// Date is the commit's time (RFC 3339), empty when unknown.
	Date string
	// Modified is true when the binary was built from a checkout with
	// uncommitted changes (known from the build info only; a stamped
	// Version says "-dirty" instead).
	Modified  bool
	GoVersion string
	Platform  string
}

// Unknown stands for a version or commit that neither the link flags nor
// the build info carry.
const Unknown = "unknown"

// Get returns the stamped values, each one the build did not stamp taken
// from the build info.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return resolve(Info{Version: Version, Commit: Commit, Date: Date}, bi)
}

// resolve fills what stamped lacks from bi (nil when the binary has no
// build info), then Unknown.
func resolve(stamped Info, bi *debug.BuildInfo) Info {
	info := stamped
	info.GoVersion, info.Platform = runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH
	if bi != nil {
		info.GoVersion = bi.GoVersion
		vcs := map[string]string{}
		for _, s := range bi.Settings {
			vcs[s.Key] = s.Value
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			// `go install module@version` records the module's version,
			// `go build` in a checkout a pseudo-version of the commit
			// (v0.0.0-20261206172706-fdfabd893ea4+dirty).
			info.Version = bi.Main.Version
		}
		if info.Commit == "" {
			info.Commit = vcs["vcs.revision"]
			info.Modified = vcs["vcs.modified"] == "true"
		}
		if info.Date == "" {
			info.Date = vcs["vcs.time"]
		}
	}
	if info.Version == "" {
		info.Version = Unknown
	}
	if info.Commit == "" {
		info.Commit = Unknown
	}
	return info
}

// String is one line: the version, then what it was built from and with.
//
//	v0.3.0-12-g1a2b3c4 (commit 1a2b3c4d..., 2026-07-01T09:30:00Z, go1.26.0 linux/amd64)
func (i Info) String() string {
	from := []string{"commit " + i.Commit}
	if i.Modified {
		from[0] += " with uncommitted changes"
	}
	if i.Date != "" {
		from = append(from, i.Date)
	}
	from = append(from, strings.TrimSpace(i.GoVersion+" "+i.Platform))
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(from, ", "))
}
