package benchenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch/internal/testbed"
)

// Fixture is a registry with the trust material of both signers: the
// notation signer's CA and a cosign key pair, with the notation CLI's and
// Ratify's configuration to trust them.
type Fixture struct {
	env      *Env
	Registry *Registry
	Signer   *NotationSigner
	// CosignKey and CosignPub are the cosign key pair's files.
	CosignKey, CosignPub string
	// NotationXDG is the XDG_CONFIG_HOME for the notation CLI.
	NotationXDG string
	// RatifyNotation and RatifyCosign are Ratify config files for a
	// notation-only and a cosign-only job; RatifyCache their signature
	// cache, emptied before every cold run.
	RatifyNotation, RatifyCosign, RatifyCache string
}

// NewFixture starts a registry and makes the trust material.
func (e *Env) NewFixture() (*Fixture, error) {
	if err := e.Need("registry", "notation", "cosign", "ratify"); err != nil {
		return nil, err
	}
	reg, err := e.StartRegistry("registry")
	if err != nil {
		return nil, err
	}
	dir := e.Dir("trust")
	f := &Fixture{env: e, Registry: reg}
	if f.Signer, err = NewNotationSigner(dir); err != nil {
		return nil, err
	}
	if f.CosignKey, f.CosignPub, err = e.CosignKeys(dir); err != nil {
		return nil, err
	}
	if f.NotationXDG, err = NotationConfig(dir, f.Signer.CAFile); err != nil {
		return nil, err
	}
	f.RatifyCache = filepath.Join(e.Work, "ratify-cache")
	f.RatifyNotation = filepath.Join(dir, "ratify-notation.json")
	f.RatifyCosign = filepath.Join(dir, "ratify-cosign.json")
	if err := RatifyConfig(f.RatifyNotation, f.RatifyCache, f.Signer.CAFile, ""); err != nil {
		return nil, err
	}
	if err := RatifyConfig(f.RatifyCosign, f.RatifyCache, "", f.CosignPub); err != nil {
		return nil, err
	}
	return f, nil
}

// Close stops the registry.
func (f *Fixture) Close() { f.Registry.Stop() }

// NotationImage pushes an image to repo:tag on the registry and signs it
// with notation.
func (f *Fixture) NotationImage(ctx context.Context, repo, tag string) (ocispec.Descriptor, error) {
	r, err := testbed.Repo(f.Registry.Host, repo)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := testbed.PushImage(ctx, r, tag, repo+":"+tag)
	if err != nil {
		return desc, err
	}
	return desc, f.Signer.Sign(ctx, r, desc)
}

// CosignImage pushes an image to repo:tag and signs it with the cosign CLI.
func (f *Fixture) CosignImage(ctx context.Context, repo, tag string) (ocispec.Descriptor, error) {
	r, err := testbed.Repo(f.Registry.Host, repo)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := testbed.PushImage(ctx, r, tag, repo+":"+tag+" cosign")
	if err != nil {
		return desc, err
	}
	return desc, f.env.CosignSign(f.CosignKey, fmt.Sprintf("%s/%s@%s", f.Registry.Host, repo, desc.Digest))
}

// emptyRatifyCache makes the next Ratify run cold.
func (f *Fixture) emptyRatifyCache() error { return os.RemoveAll(f.RatifyCache) }

// NotationTools are the tools that verify a notation signature on ref:
// vouch, the notation CLI and Ratify's CLI.
func (f *Fixture) NotationTools(ref string) []*Tool {
	e := f.env
	home := e.Dir("home")
	return []*Tool{
		{Name: "vouch", Path: e.Bin["vouch"], Args: []string{"verify", "--notation-cert", f.Signer.CAFile, "--plain-http", ref}, Env: []string{"HOME=" + home}},
		{Name: "notation", Path: e.Bin["notation"], Args: []string{"verify", "--insecure-registry", ref}, Env: []string{"HOME=" + home, "XDG_CONFIG_HOME=" + f.NotationXDG}},
		{Name: "ratify", Path: e.Bin["ratify"], Args: []string{"verify", "-c", f.RatifyNotation, "-s", ref}, Env: []string{"HOME=" + home}, Before: f.emptyRatifyCache, Check: RatifyCheck},
	}
}

// CosignTools are the tools that verify a cosign signature on ref: vouch,
// the cosign CLI and Ratify's CLI.
func (f *Fixture) CosignTools(ref string) []*Tool {
	e := f.env
	home := e.Dir("home")
	return []*Tool{
		{Name: "vouch", Path: e.Bin["vouch"], Args: []string{"verify", "--cosign-key", f.CosignPub, "--plain-http", ref}, Env: []string{"HOME=" + home}},
		{Name: "cosign", Path: e.Bin["cosign"], Args: []string{"verify", "--key", f.CosignPub, "--insecure-ignore-tlog=true", "--allow-http-registry", ref}, Env: []string{"HOME=" + home}},
		{Name: "ratify", Path: e.Bin["ratify"], Args: []string{"verify", "-c", f.RatifyCosign, "-s", ref}, Env: []string{"HOME=" + home}, Before: f.emptyRatifyCache, Check: RatifyCheck},
	}
}

// Open is what every benchmark starts with: Setup, with Keep set to keep,
// then NewFixture. closeAll stops the fixture, then closes the
// environment.
func Open(keep bool) (env *Env, fx *Fixture, closeAll func(), err error) {
	if env, err = Setup(); err != nil {
		return nil, nil, nil, err
	}
	env.Keep = keep
	if fx, err = env.NewFixture(); err != nil {
		env.Close()
		return nil, nil, nil, err
	}
	return env, fx, func() { fx.Close(); env.Close() }, nil
}
