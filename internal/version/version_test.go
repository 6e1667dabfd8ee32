package version

import (
	"runtime/debug"
	"testing"
)

func buildInfo(mainVersion string, vcs ...string) *debug.BuildInfo {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/sluice-dev/sluice", Version: mainVersion}}
	for i := 0; i+1 < len(vcs); i += 2 {
		bi.Settings = append(bi.Settings, debug.BuildSetting{Key: vcs[i], Value: vcs[i+1]})
	}
	return bi
}

func TestResolve(t *testing.T) {
	const sha = "556a379f0c1e2d3b4a5968778695a4b3c2d1e0f9"
	checkout := buildInfo("(devel)", "vcs", "git", "vcs.revision", sha, "vcs.time", "2026-07-01T09:30:00Z", "vcs.modified", "true")
	for _, c := range []struct {
		name    string
		stamped Info
		bi      *debug.BuildInfo
		want    Info
	}{{
		name:    "make build stamps all three; the build info is not read",
		stamped: Info{Version: "v0.3.0-12-g556a379-dirty", Commit: sha, Date: "2026-07-01T09:30:00Z"},
		bi:      buildInfo("(devel)", "vcs.revision", "0000", "vcs.modified", "true", "vcs.time", "2000-01-01T00:00:00Z"),
		want:    Info{Version: "v0.3.0-12-g556a379-dirty", Commit: sha, Date: "2026-07-01T09:30:00Z"},
	}, {
		name: "go build in a checkout: the toolchain's vcs stamp",
		bi:   checkout,
		want: Info{Version: Unknown, Commit: sha, Date: "2026-07-01T09:30:00Z", Modified: true},
	}, {
		name: "go build in a checkout, Go 1.24 and later: a pseudo-version too",
		bi:   buildInfo("v0.0.0-20260701093000-556a379f0c1e+dirty", "vcs.revision", sha, "vcs.time", "2026-07-01T09:30:00Z", "vcs.modified", "true"),
		want: Info{Version: "v0.0.0-20260701093000-556a379f0c1e+dirty", Commit: sha, Date: "2026-07-01T09:30:00Z", Modified: true},
	}, {
		name: "go install module@version: the module's version, no vcs",
		bi:   buildInfo("v0.3.0"),
		want: Info{Version: "v0.3.0", Commit: Unknown},
	}, {
		name:    "only the version stamped",
		stamped: Info{Version: "v0.3.0"},
		bi:      checkout,
		want:    Info{Version: "v0.3.0", Commit: sha, Date: "2026-07-01T09:30:00Z", Modified: true},
	}, {
		name: "no build info at all",
		want: Info{Version: Unknown, Commit: Unknown},
	}} {
		t.Run(c.name, func(t *testing.T) {
			got := resolve(c.stamped, c.bi)
			if c.bi != nil && got.GoVersion != c.bi.GoVersion {
				t.Errorf("GoVersion %q, want the build info's %q", got.GoVersion, c.bi.GoVersion)
			}
			if got.Platform == "" || got.GoVersion == "" {
				t.Errorf("no Go version or platform: %+v", got)
			}
			got.GoVersion, got.Platform = "", ""
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	for _, c := range []struct {
		info Info
		want string
	}{
		{Info{Version: "v0.3.0", Commit: "556a379", Date: "2026-07-01T09:30:00Z", GoVersion: "go1.26.0", Platform: "linux/amd64"},
			"v0.3.0 (commit 556a379, 2026-07-01T09:30:00Z, go1.26.0 linux/amd64)"},
		{Info{Version: Unknown, Commit: "556a379", Modified: true, GoVersion: "go1.26.0", Platform: "darwin/arm64"},
			"unknown (commit 556a379 with uncommitted changes, go1.26.0 darwin/arm64)"},
	} {
		if got := c.info.String(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}
