package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The image's fixed facts. The chart's default image (charts/vouch/values.yaml
// image.repository, with the chart's appVersion as the tag) is
// defaultRepository:<appVersion>; TestChartDefaults keeps them in step.
const (
	defaultRepository = "ghcr.io/vouch-project/vouch"
	sourceURL         = "https://github.com/vouch-project/vouch"
	// binaryPath is where the vouch binary lies, and the entrypoint.
	binaryPath = "/usr/local/bin/vouch"
	// caPath is where Go's crypto/x509 looks first on Linux.
	caPath = "/etc/ssl/certs/ca-certificates.crt"
	// uid and gid of the non-root user, as distroless and ko name it.
	nonrootID = 65532
)

// epoch is the time of every file and of the image's creation: nothing in
// the image says when it was built.
var epoch = time.Unix(0, 0).UTC()

// Platform is one os/arch the image is built for.
type Platform struct {
	OS, Arch string
}

// String returns "os/arch".
func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ParsePlatform parses "os/arch"; only linux is accepted (the binary is
// static and the image holds no other OS's conventions).
func ParsePlatform(s string) (Platform, error) {
	goos, arch, ok := strings.Cut(s, "/")
	if !ok || goos != "linux" || arch == "" || strings.Contains(arch, "/") {
		return Platform{}, fmt.Errorf("platform %q: want linux/ARCH (linux/amd64, linux/arm64)", s)
	}
	return Platform{OS: goos, Arch: arch}, nil
}

// file is one entry of a layer: its tar header (owner, mode, type) and,
// for a regular file, its content.
type file struct {
	hdr  tar.Header
	data []byte
}

func dir(name string, mode int64, id int) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: id, Gid: id, ModTime: epoch, Format: tar.FormatPAX}}
}

func reg(name string, mode int64, data []byte) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}, data: data}
}

// caBundle returns the PEM bundle of the root certificates of
// golang.org/x/crypto/x509roots/fallback (Mozilla's NSS trust store, at the
// version go.mod pins), in the module's order. Roots with a constraint
// that X.509 cannot express (a distrust-after date) are left out: a PEM
// file would trust them without it.
func caBundle() ([]byte, int, error) {
	var buf bytes.Buffer
	n := 0
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return nil, 0, err
		}
		n++
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("golang.org/x/crypto/x509roots/fallback holds no unconstrained root")
	}
	return buf.Bytes(), n, nil
}

// baseFiles are the files every platform shares: the user and group of the
// non-root user, the CA bundle, and the folders around them.
func baseFiles() ([]file, error) {
	ca, _, err := caBundle()
	if err != nil {
		return nil, err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonrootID, nonrootID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonrootID)
	return []file{
		dir("etc", 0o755, 0),
		reg("etc/group", 0o644, []byte(group)),
		reg("etc/passwd", 0o644, []byte(passwd)),
		dir("etc/ssl", 0o755, 0),
		dir("etc/ssl/certs", 0o755, 0),
		reg(strings.TrimPrefix(caPath, "/"), 0o644, ca),
		dir("home", 0o755, 0),
		dir("home/nonroot", 0o700, nonrootID),
		dir("tmp", 0o1777, 0),
	}, nil
}

// binaryFiles is the layer of one platform: the vouch binary.
func binaryFiles(binary []byte) []file {
	return []file{
		dir("usr", 0o755, 0),
		dir("usr/local", 0o755, 0),
		dir("usr/local/bin", 0o755, 0),
		reg(strings.TrimPrefix(binaryPath, "/"), 0o755, binary),
	}
}

// tarFiles writes files as an uncompressed tar, in the order given.
func tarFiles(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := f.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", hdr.Name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layer makes a gzip-compressed OCI layer of files. Its bytes depend only
// on the files: fixed times and owners, no names or times in the gzip
// header.
func layer(files []file) (v1.Layer, error) {
	data, err := tarFiles(files)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
}

// Options say what to build.
type Options struct {
	// Version is vouch's version, the image's
	// org.opencontainers.image.version. Required.
	Version string
	// Revision is the source's commit, the image's
	// org.opencontainers.image.revision. Optional.
	Revision string
	// Binaries holds the static vouch binary of each platform, in the
	// index's order. Required, non-empty.
	Binaries []Binary
}

// Binary is the vouch binary built for one platform.
type Binary struct {
	Platform Platform
	// Path of the binary on disk.
	Path string
}

// Build assembles the multi-platform image index from the binaries. The
// index's digest is a function of Options alone.
func Build(o Options) (v1.ImageIndex, error) {
	if o.Version == "" {
		return nil, fmt.Errorf("no version")
	}
	if len(o.Binaries) == 0 {
		return nil, fmt.Errorf("no binaries")
	}
	base, err := baseFiles()
	if err != nil {
		return nil, err
	}
	baseLayer, err := layer(base)
	if err != nil {
		return nil, err
	}
	annotations := map[string]string{
		"org.opencontainers.image.source":  sourceURL,
		"org.opencontainers.image.version": o.Version,
		"org.opencontainers.image.title":   "vouch",
	}
	if o.Revision != "" {
		annotations["org.opencontainers.image.revision"] = o.Revision
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	seen := map[Platform]bool{}
	for _, b := range o.Binaries {
		if seen[b.Platform] {
			return nil, fmt.Errorf("platform %s given twice", b.Platform)
		}
		seen[b.Platform] = true
		img, err := image(b, baseLayer, annotations)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Platform, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: b.Platform.OS, Architecture: b.Platform.Arch}},
		})
	}
	return mutate.Annotations(idx, annotations).(v1.ImageIndex), nil
}

// image is one platform's image: the shared base layer, then the binary.
func image(b Binary, base v1.Layer, annotations map[string]string) (v1.Image, error) {
	binary, err := os.ReadFile(b.Path)
	if err != nil {
		return nil, err
	}
	bin, err := layer(binaryFiles(binary))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: b.Platform.Arch,
		OS:           b.Platform.OS,
		Created:      v1.Time{Time: epoch},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", nonrootID, nonrootID),
			Entrypoint: []string{binaryPath},
			Env:        []string{"PATH=/usr/local/bin", "HOME=/home/nonroot"},
			WorkingDir: "/home/nonroot",
			Labels:     annotations,
		},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "hack/image: users, groups and CA certificates", Comment: "golang.org/x/crypto/x509roots/fallback"}},
		mutate.Addendum{Layer: bin, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "hack/image: vouch " + b.Platform.String()}},
	)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, annotations).(v1.Image), nil
}

// WriteRootfs writes each platform's files under dir/OS_ARCH, for tools
// that scan a file system (syft scan dir:...).
func WriteRootfs(dir string, o Options) error {
	base, err := baseFiles()
	if err != nil {
		return err
	}
	for _, b := range o.Binaries {
		binary, err := os.ReadFile(b.Path)
		if err != nil {
			return err
		}
		root := filepath.Join(dir, b.Platform.OS+"_"+b.Platform.Arch)
		for _, f := range append(append([]file{}, base...), binaryFiles(binary)...) {
			path := filepath.Join(root, filepath.FromSlash(f.hdr.Name))
			if f.hdr.Typeflag == tar.TypeDir {
				if err := os.MkdirAll(path, 0o755); err != nil {
					return err
				}
				continue
			}
			if err := os.WriteFile(path, f.data, os.FileMode(f.hdr.Mode)&0o777); err != nil {
				return err
			}
		}
	}
	return nil
}
