package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.yaml.in/yaml/v3"
)

// fakeBinaries writes one stand-in binary per platform into dir (the real
// build is test/release's; here the image around it is tested).
func fakeBinaries(t *testing.T, dir string, content func(Platform) string) []Binary {
	t.Helper()
	var out []Binary
	for _, p := range []Platform{{"linux", "amd64"}, {"linux", "arm64"}} {
		path := filepath.Join(dir, "vouch-"+p.Arch)
		if err := os.WriteFile(path, []byte(content(p)), 0o700); err != nil {
			t.Fatal(err)
		}
		out = append(out, Binary{Platform: p, Path: path})
	}
	return out
}

func digestOf(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func manifestDigests(t *testing.T, idx v1.ImageIndex) map[string]v1.Hash {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v1.Hash{}
	for _, d := range m.Manifests {
		out[d.Platform.Architecture] = d.Digest
	}
	return out
}

// TestBuildReproducible: the same binaries, in other files with other
// times and modes, give the same index digest; one changed byte in one
// platform's binary changes that platform's manifest and the index, and
// nothing else.
func TestBuildReproducible(t *testing.T) {
	same := func(p Platform) string { return "vouch for " + p.String() }
	a, err := Build(Options{Version: "v9.9.9", Binaries: fakeBinaries(t, t.TempDir(), same)})
	if err != nil {
		t.Fatal(err)
	}
	dirB := t.TempDir()
	binsB := fakeBinaries(t, dirB, same)
	for _, b := range binsB {
		if err := os.Chtimes(b.Path, time.Now().Add(time.Hour), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(b.Path, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Build(Options{Version: "v9.9.9", Binaries: binsB})
	if err != nil {
		t.Fatal(err)
	}
	if da, db := digestOf(t, a), digestOf(t, b); da != db {
		t.Fatalf("two builds of the same binaries: %s and %s", da, db)
	}

	changed := func(p Platform) string {
		if p.Arch == "arm64" {
			return "vouch for " + p.String() + "!"
		}
		return same(p)
	}
	c, err := Build(Options{Version: "v9.9.9", Binaries: fakeBinaries(t, t.TempDir(), changed)})
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, a) == digestOf(t, c) {
		t.Fatal("a changed binary left the index digest as it was")
	}
	ma, mc := manifestDigests(t, a), manifestDigests(t, c)
	if ma["amd64"] != mc["amd64"] || ma["arm64"] == mc["arm64"] {
		t.Fatalf("manifests %v and %v: want only arm64's to differ", ma, mc)
	}
}

// layerFiles reads a layer's tar into headers and contents by name.
func layerFiles(t *testing.T, l v1.Layer) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name], data[h.Name] = h, b
	}
	return hdrs, data
}

// TestImageContents checks what each platform's image holds: the binary
// as the entrypoint, the non-root user in /etc/passwd and /etc/group and
// as the config's User, the CA bundle, fixed times and owners, OCI media
// types and the platform.
func TestImageContents(t *testing.T) {
	idx, err := Build(Options{Version: "v1.2.3", Revision: "abc123", Binaries: fakeBinaries(t, t.TempDir(), func(p Platform) string { return "bin " + p.Arch })})
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || im.Annotations["org.opencontainers.image.version"] != "v1.2.3" || im.Annotations["org.opencontainers.image.revision"] != "abc123" {
		t.Fatalf("index: media type %s, annotations %v", im.MediaType, im.Annotations)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("%d manifests, want 2", len(im.Manifests))
	}
	var baseDigest v1.Hash
	for _, d := range im.Manifests {
		t.Run(d.Platform.String(), func(t *testing.T) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
				t.Errorf("media types %s, %s", m.MediaType, m.Config.MediaType)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.OS != "linux" || cfg.Architecture != d.Platform.Architecture {
				t.Errorf("config platform %s/%s, index says %s", cfg.OS, cfg.Architecture, d.Platform)
			}
			if cfg.Config.User != "65532:65532" || strings.Join(cfg.Config.Entrypoint, " ") != "/usr/local/bin/vouch" {
				t.Errorf("User %q, Entrypoint %q", cfg.Config.User, cfg.Config.Entrypoint)
			}
			if !cfg.Created.Time.Equal(epoch) || cfg.RootFS.Type != "layers" {
				t.Errorf("created %s, rootfs type %q", cfg.Created, cfg.RootFS.Type)
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != 2 {
				t.Fatalf("%d layers, want 2", len(layers))
			}
			// The base layer is the same blob on every platform.
			bd, _ := layers[0].Digest()
			if baseDigest != (v1.Hash{}) && bd != baseDigest {
				t.Errorf("base layer %s differs from the other platform's %s", bd, baseDigest)
			}
			baseDigest = bd
			hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
			for _, l := range layers {
				if mt, _ := l.MediaType(); mt != types.OCILayer {
					t.Errorf("layer media type %s", mt)
				}
				h, b := layerFiles(t, l)
				for k := range h {
					hdrs[k], data[k] = h[k], b[k]
				}
			}
			for name, h := range hdrs {
				if !h.ModTime.Equal(epoch) {
					t.Errorf("%s: time %s", name, h.ModTime)
				}
				wantID := 0
				if name == "home/nonroot/" {
					wantID = nonrootID
				}
				if h.Uid != wantID || h.Gid != wantID || h.Uname != "" || h.Gname != "" {
					t.Errorf("%s: owner %d:%d (%q:%q), want %d:%d", name, h.Uid, h.Gid, h.Uname, h.Gname, wantID, wantID)
				}
			}
			if h := hdrs["usr/local/bin/vouch"]; h == nil || h.Mode != 0o755 || string(data["usr/local/bin/vouch"]) != "bin "+d.Platform.Architecture {
				t.Errorf("usr/local/bin/vouch: %+v %q", h, data["usr/local/bin/vouch"])
			}
			if !strings.Contains(string(data["etc/passwd"]), "nonroot:x:65532:65532:") || !strings.Contains(string(data["etc/group"]), "nonroot:x:65532:") {
				t.Errorf("passwd %q, group %q", data["etc/passwd"], data["etc/group"])
			}
			n := 0
			for rest := data["etc/ssl/certs/ca-certificates.crt"]; ; n++ {
				var block *pem.Block
				block, rest = pem.Decode(rest)
				if block == nil {
					if len(bytes.TrimSpace(rest)) != 0 {
						t.Errorf("ca-certificates.crt: %d bytes after the last certificate", len(rest))
					}
					break
				}
				if _, err := x509.ParseCertificate(block.Bytes); err != nil {
					t.Errorf("ca-certificates.crt, certificate %d: %v", n, err)
				}
			}
			if _, want, _ := caBundle(); n != want || n < 100 {
				t.Errorf("ca-certificates.crt holds %d certificates, want %d (and more than 100)", n, want)
			}
		})
	}
}

// TestChartDefaults: the chart deploys, by default, the image this program
// builds and hack/release-image.sh publishes: image.repository is
// defaultRepository and the tag is the chart's appVersion (the version
// this program defaults to); its pods run as the image's user.
func TestChartDefaults(t *testing.T) {
	data, err := os.ReadFile("../../charts/vouch/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Image struct {
			Repository, Tag, Digest string
		}
		PodSecurityContext struct {
			RunAsUser  int `yaml:"runAsUser"`
			RunAsGroup int `yaml:"runAsGroup"`
		} `yaml:"podSecurityContext"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	if values.Image.Repository != defaultRepository || values.Image.Tag != "" || values.Image.Digest != "" {
		t.Errorf("charts/vouch/values.yaml image: %+v, want repository %s with no tag and no digest (the chart's appVersion)", values.Image, defaultRepository)
	}
	if sc := values.PodSecurityContext; sc.RunAsUser != nonrootID || sc.RunAsGroup != nonrootID {
		t.Errorf("charts/vouch/values.yaml podSecurityContext runs as %d:%d, the image's user is %d:%d", sc.RunAsUser, sc.RunAsGroup, nonrootID, nonrootID)
	}
	v, err := chartAppVersion("../../charts/vouch/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !versionPattern.MatchString(v) {
		t.Errorf("appVersion %q is not a tag this program accepts", v)
	}
	script, err := os.ReadFile("../release-image.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), defaultRepository) {
		t.Errorf("hack/release-image.sh does not name %s", defaultRepository)
	}
}

func TestParsePlatform(t *testing.T) {
	for _, tt := range []struct {
		in, err string
	}{
		{"linux/amd64", ""},
		{"linux/arm64", ""},
		{"windows/amd64", "want linux/ARCH"},
		{"linux", "want linux/ARCH"},
		{"linux/arm/v7", "want linux/ARCH"},
	} {
		_, err := ParsePlatform(tt.in)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParsePlatform(%q): %v, want %q", tt.in, err, tt.err)
		}
	}
}
