package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// The archives are reproducible and hold the binary under its command's
// name; the krew manifest names each platform's archive with its real
// checksum and the binary inside.
func TestArchivesAndKrewManifest(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "built")
	if err := os.WriteFile(bin, []byte("#!not really a binary\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1_800_000_000, 0).UTC()
	sums := map[string]string{}
	for _, p := range platforms {
		name := archiveName("kubectl-sluice", "v1.2.3", p.os, p.arch)
		sum, err := archive(filepath.Join(dir, name), when, bin, "kubectl-sluice")
		if err != nil {
			t.Fatal(err)
		}
		again, err := archive(filepath.Join(dir, "again-"+name), when, bin, "kubectl-sluice")
		if err != nil {
			t.Fatal(err)
		}
		if sum != again {
			t.Errorf("%s: two archives of one binary differ (%s, %s)", name, sum, again)
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(raw); hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: returned checksum %s is not the file's", name, sum)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if h.Name != "kubectl-sluice" || h.Mode != 0o755 || !h.ModTime.Equal(when) || string(body) != "#!not really a binary\n" {
			t.Errorf("%s holds %s (mode %o, %s, %d bytes)", name, h.Name, h.Mode, h.ModTime, len(body))
		}
		if _, err := tr.Next(); err != io.EOF {
			t.Errorf("%s holds more than the binary", name)
		}
		sums[name] = sum
	}

	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Version          string `json:"version"`
			Homepage         string `json:"homepage"`
			ShortDescription string `json:"shortDescription"`
			Description      string `json:"description"`
			Platforms        []struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				URI    string `json:"uri"`
				SHA256 string `json:"sha256"`
				Bin    string `json:"bin"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(krewManifest("v1.2.3", sums), &m); err != nil {
		t.Fatalf("krew manifest: %v", err)
	}
	if m.Kind != "Plugin" || m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Metadata.Name != "sluice" || m.Spec.Version != "v1.2.3" {
		t.Errorf("manifest header: %s %s %s %s", m.APIVersion, m.Kind, m.Metadata.Name, m.Spec.Version)
	}
	if len(m.Spec.Platforms) != len(platforms) {
		t.Fatalf("%d platforms in the manifest, want %d", len(m.Spec.Platforms), len(platforms))
	}
	for i, p := range m.Spec.Platforms {
		name := archiveName("kubectl-sluice", "v1.2.3", platforms[i].os, platforms[i].arch)
		if p.Selector.MatchLabels["os"] != platforms[i].os || p.Selector.MatchLabels["arch"] != platforms[i].arch ||
			p.URI != downloads+"/v1.2.3/"+name || p.SHA256 != sums[name] || p.Bin != "kubectl-sluice" {
			t.Errorf("platform %d: %+v, want %s with sha256 %s", i, p, name, sums[name])
		}
	}
}
