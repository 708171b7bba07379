package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
)

// Repo returns an oras-go repository for HOST/NAME over plain HTTP.
func Repo(host, name string) (*remote.Repository, error) {
	r, err := remote.NewRepository(host + "/" + name)
	if err != nil {
		return nil, err
	}
	r.PlainHTTP = true
	return r, nil
}

// PushBlob pushes data as a blob of mediaType to target (a repository, an
// OCI layout store) and returns its descriptor; content the target has
// already is not an error.
func PushBlob(ctx context.Context, target oras.Target, mediaType string, data []byte) (ocispec.Descriptor, error) {
	desc := content.NewDescriptorFromBytes(mediaType, data)
	if err := target.Push(ctx, desc, bytes.NewReader(data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return desc, fmt.Errorf("push blob: %w", err)
	}
	return desc, nil
}

// PushRawManifest pushes manifest bytes as they are and tags them when tag
// is not empty.
func PushRawManifest(ctx context.Context, target oras.Target, mediaType string, data []byte, tag string) (ocispec.Descriptor, error) {
	desc := content.NewDescriptorFromBytes(mediaType, data)
	var err error
	if rp, ok := target.(registry.ReferencePusher); ok && tag != "" {
		err = rp.PushReference(ctx, desc, bytes.NewReader(data), tag)
	} else {
		if err = target.Push(ctx, desc, bytes.NewReader(data)); errors.Is(err, errdef.ErrAlreadyExists) {
			err = nil
		}
		if err == nil && tag != "" {
			err = target.Tag(ctx, desc, tag)
		}
	}
	if err != nil {
		return desc, fmt.Errorf("push manifest: %w", err)
	}
	return desc, nil
}

// PushManifest pushes v, marshalled to JSON, as a manifest of mediaType and
// tags it when tag is not empty.
func PushManifest(ctx context.Context, target oras.Target, mediaType string, v any, tag string) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return PushRawManifest(ctx, target, mediaType, data, tag)
}

// PushImage pushes a small image (a config and one layer whose bytes are
// seed) and tags it when tag is not empty.
func PushImage(ctx context.Context, target oras.Target, tag, seed string) (ocispec.Descriptor, error) {
	config, err := PushBlob(ctx, target, ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	if err != nil {
		return config, err
	}
	layer, err := PushBlob(ctx, target, ocispec.MediaTypeImageLayer, []byte(seed))
	if err != nil {
		return layer, err
	}
	return PushManifest(ctx, target, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
	}, tag)
}

// PushIndex pushes an image index over manifests and tags it when tag is
// not empty.
func PushIndex(ctx context.Context, target oras.Target, tag string, manifests ...ocispec.Descriptor) (ocispec.Descriptor, error) {
	return PushManifest(ctx, target, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: manifests,
	}, tag)
}

// ArtifactManifest pushes the empty config and a layer of layerType
// holding data, and returns, without pushing it, an artifact manifest of
// artifactType over them whose subject is subject: for callers that add
// annotations, or alter it, first.
func ArtifactManifest(ctx context.Context, target oras.Target, subject ocispec.Descriptor, artifactType, layerType string, data []byte) (ocispec.Manifest, error) {
	empty, err := PushBlob(ctx, target, ocispec.MediaTypeEmptyJSON, ocispec.DescriptorEmptyJSON.Data)
	if err != nil {
		return ocispec.Manifest{}, err
	}
	empty.Data = ocispec.DescriptorEmptyJSON.Data
	layer, err := PushBlob(ctx, target, layerType, data)
	if err != nil {
		return ocispec.Manifest{}, err
	}
	return ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       empty,
		Layers:       []ocispec.Descriptor{layer},
		Subject:      &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
	}, nil
}

// PushArtifact attaches an artifact of artifactType, with one layer of
// layerType holding data, to subject as an OCI 1.1 referrer (oras-go keeps
// the "sha256-<hex>" referrers tag itself on a registry without the
// referrers API), and returns its descriptor.
func PushArtifact(ctx context.Context, target oras.Target, subject ocispec.Descriptor, artifactType, layerType string, data []byte) (ocispec.Descriptor, error) {
	m, err := ArtifactManifest(ctx, target, subject, artifactType, layerType, data)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return PushManifest(ctx, target, ocispec.MediaTypeImageManifest, m, "")
}

// Pusher writes test content into one repository with oras-go, the way real
// clients do, failing the test on error.
type Pusher struct {
	t testing.TB
	// Repo is the repository, over plain HTTP.
	Repo *remote.Repository
}

// NewPusher returns a Pusher for HOST/REPO over plain HTTP.
func NewPusher(t testing.TB, host, repo string) *Pusher {
	t.Helper()
	r, err := Repo(host, repo)
	if err != nil {
		t.Fatal(err)
	}
	return &Pusher{t: t, Repo: r}
}

// must fails the test on err, and returns desc otherwise.
func (p *Pusher) must(desc ocispec.Descriptor, err error) ocispec.Descriptor {
	p.t.Helper()
	if err != nil {
		p.t.Fatal(err)
	}
	return desc
}

// Blob pushes data as a blob and returns its descriptor (PushBlob).
func (p *Pusher) Blob(mediaType string, data []byte) ocispec.Descriptor {
	p.t.Helper()
	return p.must(PushBlob(context.Background(), p.Repo, mediaType, data))
}

// Manifest pushes a manifest value (marshalled to JSON) and tags it when
// tag is not empty (PushManifest).
func (p *Pusher) Manifest(mediaType string, v any, tag string) ocispec.Descriptor {
	p.t.Helper()
	return p.must(PushManifest(context.Background(), p.Repo, mediaType, v, tag))
}

// RawManifest pushes manifest bytes as they are (PushRawManifest).
func (p *Pusher) RawManifest(mediaType string, data []byte, tag string) ocispec.Descriptor {
	p.t.Helper()
	return p.must(PushRawManifest(context.Background(), p.Repo, mediaType, data, tag))
}

// Image pushes a small image (a config and one layer whose bytes are seed)
// and tags it (PushImage).
func (p *Pusher) Image(tag, seed string) ocispec.Descriptor {
	p.t.Helper()
	return p.must(PushImage(context.Background(), p.Repo, tag, seed))
}

// Index pushes an image index over manifests and tags it (PushIndex).
func (p *Pusher) Index(tag string, manifests ...ocispec.Descriptor) ocispec.Descriptor {
	p.t.Helper()
	return p.must(PushIndex(context.Background(), p.Repo, tag, manifests...))
}

// Attach pushes an artifact manifest of artifactType whose subject is
// subject, with one layer holding data, and returns its descriptor
// (PushArtifact).
func (p *Pusher) Attach(subject ocispec.Descriptor, artifactType, layerType string, data []byte) ocispec.Descriptor {
	p.t.Helper()
	return p.must(PushArtifact(context.Background(), p.Repo, subject, artifactType, layerType, data))
}

// ArtifactManifest pushes the layer and returns, without pushing it, the
// artifact manifest Attach would push, for tests that alter it first.
func (p *Pusher) ArtifactManifest(subject ocispec.Descriptor, artifactType, layerType string, data []byte) ocispec.Manifest {
	p.t.Helper()
	m, err := ArtifactManifest(context.Background(), p.Repo, subject, artifactType, layerType, data)
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

// Digest is a shorthand for digest.FromBytes.
func Digest(data []byte) digest.Digest { return digest.FromBytes(data) }
