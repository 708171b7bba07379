// Command image builds vouch's container image without Docker: for each
// platform it builds the static vouch binary (-tags kubernetes,policycode,kms,
// CGO_ENABLED=0, -trimpath), puts it in an image beside the CA certificates
// of golang.org/x/crypto/x509roots/fallback and the non-root user 65532,
// and writes the multi-platform image index into an OCI image layout with
// go-containerregistry. Same source, same Go toolchain, same flags: same
// index digest (docs/image.md, "Reproducibility").
//
// Run it from the repository's root:
//
//	go run ./hack/image --layout out/image
//
// It prints the index's digest. hack/release-image.sh pushes, attaches the
// SBOM and signs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"go.yaml.in/yaml/v3"
)

// versionPattern is what a version must look like: an OCI tag.
var versionPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	layoutDir := fs.String("layout", "", "folder of the OCI image layout to write (replaced). Required")
	version := fs.String("version", "", "vouch's version, linked into the binary and the image's tag (default: charts/vouch/Chart.yaml's appVersion)")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "platforms to build, comma-separated")
	rootfs := fs.String("rootfs", "", "also write each platform's files under this folder (OS_ARCH/...), for SBOM tools")
	revision := fs.String("revision", "", "the source's commit, recorded as the image's org.opencontainers.image.revision (optional)")
	printVersion := fs.Bool("print-version", false, "print the version the image would have, and exit")
	binDir := fs.String("bin-dir", "", "keep the built binaries in this folder (default: a temporary folder)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*layoutDir == "" && !*printVersion) || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("usage: image --layout DIR [--version V] [--revision COMMIT] [--platforms P,...] [--rootfs DIR] [--bin-dir DIR]")
	}
	if *version == "" {
		v, err := chartAppVersion("charts/vouch/Chart.yaml")
		if err != nil {
			return err
		}
		*version = v
	}
	if !versionPattern.MatchString(*version) {
		return fmt.Errorf("version %q: want a tag of letters, digits, '.', '_' and '-' (at most 128)", *version)
	}
	if *printVersion {
		fmt.Println(*version)
		return nil
	}
	var plats []Platform
	for _, s := range strings.Split(*platforms, ",") {
		p, err := ParsePlatform(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		plats = append(plats, p)
	}
	if *binDir == "" {
		tmp, err := os.MkdirTemp("", "vouch-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*binDir = tmp
	}
	o := Options{Version: *version, Revision: *revision}
	for _, p := range plats {
		out := filepath.Join(*binDir, "vouch-"+p.OS+"-"+p.Arch)
		if err := goBuild(ctx, p, *version, out); err != nil {
			return err
		}
		o.Binaries = append(o.Binaries, Binary{Platform: p, Path: out})
	}
	idx, err := Build(o)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(*layoutDir); err != nil {
		return err
	}
	lp, err := layout.Write(*layoutDir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": *version})); err != nil {
		return err
	}
	if *rootfs != "" {
		if err := os.RemoveAll(*rootfs); err != nil {
			return err
		}
		if err := WriteRootfs(*rootfs, o); err != nil {
			return err
		}
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Println(digest)
	return nil
}

// buildEnv is the environment of go build besides the caller's: every
// variable that changes the binary and that a developer's shell may set
// differently is fixed here.
func buildEnv(p Platform) []string {
	return []string{
		"CGO_ENABLED=0",
		"GOOS=" + p.OS,
		"GOARCH=" + p.Arch,
		"GOAMD64=v1",
		"GOARM64=v8.0",
		// No VCS stamps: a checkout and a source archive of one commit
		// give the same binary (the commit goes into the image's
		// org.opencontainers.image.revision instead, with --revision).
		"GOFLAGS=-mod=readonly -buildvcs=false",
		"GOEXPERIMENT=",
	}
}

// goBuild builds cmd/vouch for p into out: static, with the Kubernetes
// source, the Rego and CEL engines and the key-management providers
// (-tags kubernetes,policycode,kms), without file system paths
// (-trimpath), without the symbol table and DWARF (-s -w; stack traces
// keep function names and lines), and with the version linked in.
func goBuild(ctx context.Context, p Platform, version, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "kubernetes,policycode,kms",
		"-ldflags", "-s -w -X main.version="+version, "-o", out, "./cmd/vouch")
	cmd.Env = append(os.Environ(), buildEnv(p)...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s: %v\n%s", p, err, output)
	}
	return nil
}

// chartAppVersion reads the appVersion of a Chart.yaml: the image's tag is
// the version the chart deploys by default.
func chartAppVersion(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w (run from the repository's root, or pass --version)", err)
	}
	var chart struct {
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if chart.AppVersion == "" {
		return "", fmt.Errorf("%s: no appVersion", path)
	}
	return chart.AppVersion, nil
}
