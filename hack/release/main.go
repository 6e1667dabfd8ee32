// Command release builds the archives of a Sluice release: kubectl-sluice
// (the kubectl plugin) and sluice (the controller, for running it outside
// a cluster) for linux and darwin on amd64 and arm64, a SHA256SUMS file
// beside them, and the krew plugin manifest for kubectl-sluice with the
// archives' addresses and checksums. The archives are reproducible: every
// entry has the commit's time and root's ownership, and gzip records no
// name or time.
//
//	go run ./hack/release -out bin/release -version v0.3.0 -epoch <unix> -ldflags '-X ...'
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Where the archives are published: the krew manifest points there.
const downloads = "https://github.com/sluice-dev/sluice/releases/download"

var platforms = []struct{ os, arch string }{
	{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"},
}

func main() {
	out := flag.String("out", "bin/release", "directory for the archives, SHA256SUMS and sluice.yaml (the krew manifest); replaced")
	version := flag.String("version", "dev", "the release's version (git describe)")
	epoch := flag.Int64("epoch", 0, "the commit's time (Unix seconds): every time in the archives")
	ldflags := flag.String("ldflags", "", "extra -ldflags for go build (the version and commit)")
	flag.Parse()
	if err := run(*out, *version, time.Unix(*epoch, 0).UTC(), *ldflags); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(out, version string, when time.Time, ldflags string) error {
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	sums := map[string]string{}
	for _, p := range platforms {
		for _, cmd := range []string{"kubectl-sluice", "sluice"} {
			bin := filepath.Join(tmp, p.os+"-"+p.arch, cmd)
			build := exec.Command("go", "build", "-trimpath", "-ldflags", strings.TrimSpace("-s -w "+ldflags), "-o", bin, "./cmd/"+cmd)
			build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch)
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				return fmt.Errorf("go build ./cmd/%s for %s/%s: %w", cmd, p.os, p.arch, err)
			}
			name := archiveName(cmd, version, p.os, p.arch)
			sum, err := archive(filepath.Join(out, name), when, bin, cmd)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			sums[name] = sum
		}
	}
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	if err := os.WriteFile(filepath.Join(out, "SHA256SUMS"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "sluice.yaml"), krewManifest(version, sums), 0o644)
}

func archiveName(cmd, version, goos, arch string) string {
	return fmt.Sprintf("%s_%s_%s_%s.tar.gz", cmd, version, goos, arch)
}

// archive writes a gzipped tar holding the binary as name (mode 0755)
// and returns its SHA-256.
func archive(path string, when time.Time, bin, name string) (string, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	tw := tar.NewWriter(gz)
	h := &tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: when, Typeflag: tar.TypeReg, Uname: "root", Gname: "root", Format: tar.FormatPAX}
	if err := tw.WriteHeader(h); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), os.WriteFile(path, buf.Bytes(), 0o644)
}

// krewManifest is the krew index's Plugin for kubectl-sluice: one
// platform per archive, each with its address and SHA-256.
func krewManifest(version string, sums map[string]string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: sluice
spec:
  version: %s
  homepage: https://github.com/sluice-dev/sluice
  shortDescription: Watch, promote and roll back Sluice canaries
  description: |
    Sluice is a progressive-delivery controller: each new revision of a
    Deployment runs as a canary that gets traffic in steps while metrics
    and webhooks are checked, then is promoted or rolled back. This plugin
    lists and watches Canaries (get --watch), promotes, aborts, retries,
    pauses and resumes releases, shows their history, undoes the last
    promotion, lints Canaries and converts Flagger and Argo Rollouts
    manifests to Sluice's.
  platforms:
`, version)
	for _, p := range platforms {
		name := archiveName("kubectl-sluice", version, p.os, p.arch)
		fmt.Fprintf(&b, `  - selector:
      matchLabels:
        os: %s
        arch: %s
    uri: %s/%s/%s
    sha256: %s
    bin: kubectl-sluice
`, p.os, p.arch, downloads, version, name, sums[name])
	}
	return []byte(b.String())
}
