// Command imagebuild assembles Sluice's controller image without a
// container engine: a static Go binary for each platform on an empty base
// with what such a binary needs (CA certificates, a nonroot user, no
// shell), written as an OCI image layout with an SPDX SBOM beside it.
//
// The same commit gives the same digest: the binaries are built with
// -trimpath, every file of the layers has the commit's time and root's
// ownership, the layers are gzipped by this program's Go, and the image's
// times are the commit's (SOURCE_DATE_EPOCH style, -epoch).
//
//	imagebuild -root . -out bin/image -version v0.3.0 -commit <sha> -epoch <unix> \
//	  -ldflags '-X ...' -platforms linux/amd64,linux/arm64
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The user the image runs as, as distroless images name it.
const (
	uid      = 65532
	user     = "nonroot"
	binPath  = "sluice"
	caPath   = "etc/ssl/certs/ca-certificates.crt"
	imageURL = "https://github.com/sluice-dev/sluice"
)

type options struct {
	root, out, pkg, ldflags string
	version, commit         string
	epoch                   int64
	platforms               []string
}

func main() {
	var o options
	var platforms string
	flag.StringVar(&o.root, "root", ".", "the main module's directory")
	flag.StringVar(&o.out, "out", "bin/image", "directory for the OCI layout (oci/) and the SBOM (sluice.spdx.json); replaced")
	flag.StringVar(&o.pkg, "pkg", "./cmd/sluice", "the package of the controller")
	flag.StringVar(&o.ldflags, "ldflags", "", "extra -ldflags for go build (the version and commit)")
	flag.StringVar(&o.version, "version", "dev", "the version, for the annotations and the layout's ref name")
	flag.StringVar(&o.commit, "commit", "", "the commit, for the annotations")
	flag.Int64Var(&o.epoch, "epoch", 0, "the commit's time (Unix seconds): every time in the image")
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated os/arch")
	flag.Parse()
	o.platforms = strings.Split(platforms, ",")
	digest, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
	fmt.Println(digest)
}

func build(o options) (string, error) {
	when := time.Unix(o.epoch, 0).UTC()
	annotations := map[string]string{
		"org.opencontainers.image.title":    "sluice",
		"org.opencontainers.image.source":   imageURL,
		"org.opencontainers.image.url":      imageURL,
		"org.opencontainers.image.revision": o.commit,
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.created":  when.Format(time.RFC3339),
	}
	base, err := baseLayer(when)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var firstBinary string
	for _, p := range o.platforms {
		osName, arch, ok := strings.Cut(p, "/")
		if !ok || osName != "linux" {
			return "", fmt.Errorf("platform %q: want linux/<arch>", p)
		}
		bin := filepath.Join(tmp, "sluice-"+arch)
		if err := goBuild(o, arch, bin); err != nil {
			return "", err
		}
		if firstBinary == "" {
			firstBinary = bin
		}
		app, err := fileLayer(when, []entry{{name: binPath, mode: 0o555, file: bin}})
		if err != nil {
			return "", err
		}
		img, err := image(base, app, arch, when, annotations)
		if err != nil {
			return "", err
		}
		plat := &v1.Platform{OS: osName, Architecture: arch}
		if arch == "arm64" {
			plat.Variant = "v8"
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	digest, err := idx.Digest()
	if err != nil {
		return "", err
	}

	dir := filepath.Join(o.out, "oci")
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", dir, err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": o.version})); err != nil {
		return "", fmt.Errorf("write %s: %w", dir, err)
	}
	if err := writeSBOM(filepath.Join(o.out, "sluice.spdx.json"), firstBinary, o, digest, when); err != nil {
		return "", err
	}
	return digest.String(), nil
}

// goBuild builds the static controller for linux/arch.
func goBuild(o options, arch, out string) error {
	ldflags := strings.TrimSpace("-s -w " + o.ldflags)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, o.pkg)
	cmd.Dir = o.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for linux/%s: %w", o.pkg, arch, err)
	}
	return nil
}

// image is one platform's image: the base and the binary, run as the
// nonroot user, with every time the commit's.
func image(base, app v1.Layer, arch string, when time.Time, annotations map[string]string) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: when}, CreatedBy: "imagebuild: CA certificates, /etc/passwd and /etc/group (nonroot 65532)", Comment: "base"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: v1.Time{Time: when}, CreatedBy: "imagebuild: go build -trimpath (CGO_ENABLED=0) ./cmd/sluice", Comment: "sluice"}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: when}
	cf.OS, cf.Architecture = "linux", arch
	if arch == "arm64" {
		cf.Variant = "v8"
	}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint: []string{"/" + binPath},
		WorkingDir: "/",
		Env:        []string{"SSL_CERT_FILE=/" + caPath},
		Labels:     annotations,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, annotations).(v1.Image), nil
}

// entry is one file or directory of a layer.
type entry struct {
	name string
	mode int64
	dir  bool
	data []byte
	file string // read from this path when set
}

// baseLayer holds what a static Go binary needs: the CA certificates
// (NSS's roots as golang.org/x/crypto/x509roots/fallback pins them, so the
// bytes depend on the module version, not on the build machine; roots
// with a constraint PEM cannot carry are left out) and a passwd and group
// naming root and nonroot. No shell, no package manager, nothing
// writable by the nonroot user.
func baseLayer(when time.Time) (v1.Layer, error) {
	var ca bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if err := pem.Encode(&ca, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, err
		}
	}
	return fileLayer(when, []entry{
		{name: "etc", dir: true, mode: 0o755},
		{name: "etc/group", mode: 0o444, data: fmt.Appendf(nil, "root:x:0:\n%s:x:%d:\n", user, uid)},
		{name: "etc/passwd", mode: 0o444, data: fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", user, uid, uid, user, user)},
		{name: "etc/ssl", dir: true, mode: 0o755},
		{name: "etc/ssl/certs", dir: true, mode: 0o755},
		{name: caPath, mode: 0o444, data: ca.Bytes()},
		{name: "home", dir: true, mode: 0o755},
		{name: "home/" + user, dir: true, mode: 0o555},
		{name: "tmp", dir: true, mode: 0o555},
	})
}

// fileLayer writes the entries, sorted, with the commit's time and
// root's ownership, as a gzipped tar.
func fileLayer(when time.Time, entries []entry) (v1.Layer, error) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var raw bytes.Buffer
	gz, err := gzip.NewWriterLevel(&raw, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: when, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		data := e.data
		if e.file != "" {
			if data, err = os.ReadFile(e.file); err != nil {
				return nil, err
			}
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	b := raw.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// writeSBOM writes an SPDX 2.3 document of what the binary was built
// from: the Go toolchain, the main module and every module linked in,
// as the binary's own build information lists them.
func writeSBOM(path, binary string, o options, digest v1.Hash, when time.Time) error {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("read build information of %s: %w", binary, err)
	}
	type checksum struct {
		Algorithm string `json:"algorithm"`
		Value     string `json:"checksumValue"`
	}
	type ref struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	}
	type pkg struct {
		ID               string     `json:"SPDXID"`
		Name             string     `json:"name"`
		Version          string     `json:"versionInfo,omitempty"`
		Supplier         string     `json:"supplier,omitempty"`
		DownloadLocation string     `json:"downloadLocation"`
		FilesAnalyzed    bool       `json:"filesAnalyzed"`
		Checksums        []checksum `json:"checksums,omitempty"`
		ExternalRefs     []ref      `json:"externalRefs,omitempty"`
		PrimaryPurpose   string     `json:"primaryPackagePurpose,omitempty"`
	}
	type rel struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	}
	id := func(name string) string {
		h := sha256.Sum256([]byte(name))
		return "SPDXRef-Package-" + hex.EncodeToString(h[:8])
	}
	image := pkg{ID: "SPDXRef-Image", Name: "sluice", Version: o.version, DownloadLocation: imageURL, PrimaryPurpose: "CONTAINER",
		Checksums:    []checksum{{Algorithm: "SHA256", Value: digest.Hex}},
		ExternalRefs: []ref{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:oci/sluice@" + digest.String() + "?repository_url=ghcr.io/sluice-dev/sluice"}}}
	main := pkg{ID: id(info.Main.Path), Name: info.Main.Path, Version: o.version, DownloadLocation: imageURL, PrimaryPurpose: "APPLICATION",
		ExternalRefs: []ref{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/" + info.Main.Path + "@" + o.version}}}
	golang := pkg{ID: "SPDXRef-Package-go", Name: "go", Version: strings.TrimPrefix(info.GoVersion, "go"), DownloadLocation: "https://go.dev/dl/",
		ExternalRefs: []ref{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/stdlib@" + info.GoVersion}}}
	pkgs := []pkg{image, main, golang}
	rels := []rel{
		{Element: "SPDXRef-DOCUMENT", Type: "DESCRIBES", Related: image.ID},
		{Element: image.ID, Type: "CONTAINS", Related: main.ID},
		{Element: main.ID, Type: "DEPENDS_ON", Related: golang.ID},
	}
	for _, d := range info.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		p := pkg{ID: id(m.Path), Name: m.Path, Version: m.Version, DownloadLocation: "https://proxy.golang.org/" + m.Path + "/@v/" + m.Version + ".zip",
			ExternalRefs: []ref{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/" + m.Path + "@" + m.Version}}}
		if strings.HasPrefix(m.Sum, "h1:") {
			p.ExternalRefs = append(p.ExternalRefs, ref{Category: "OTHER", Type: "go-module-sum", Locator: m.Sum})
		}
		pkgs = append(pkgs, p)
		rels = append(rels, rel{Element: main.ID, Type: "DEPENDS_ON", Related: p.ID})
	}
	doc := map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              "sluice-" + o.version,
		"documentNamespace": imageURL + "/spdx/" + digest.String(),
		"creationInfo": map[string]any{
			"created":  when.Format(time.RFC3339),
			"creators": []string{"Tool: sluice-imagebuild", "Organization: Sluice"},
		},
		"packages":      pkgs,
		"relationships": rels,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
