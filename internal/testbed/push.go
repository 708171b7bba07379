package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// Pusher writes test content into one repository with oras-go, the way real
// clients do: on a registry without the referrers API, oras-go maintains
// the "sha256-<hex>" referrers tag itself.
type Pusher struct {
	t    testing.TB
	Repo *remote.Repository
}

// NewPusher returns a Pusher for HOST/REPO over plain HTTP.
func NewPusher(t testing.TB, host, repo string) *Pusher {
	t.Helper()
	r, err := remote.NewRepository(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	return &Pusher{t: t, Repo: r}
}

// Blob pushes data as a blob and returns its descriptor.
func (p *Pusher) Blob(mediaType string, data []byte) ocispec.Descriptor {
	p.t.Helper()
	desc := content.NewDescriptorFromBytes(mediaType, data)
	if err := p.Repo.Push(context.Background(), desc, bytes.NewReader(data)); err != nil {
		p.t.Fatalf("push blob: %v", err)
	}
	return desc
}

// Manifest pushes a manifest value (marshalled to JSON) and tags it when
// tag is not empty.
func (p *Pusher) Manifest(mediaType string, v any, tag string) ocispec.Descriptor {
	p.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.RawManifest(mediaType, data, tag)
}

// RawManifest pushes manifest bytes as they are.
func (p *Pusher) RawManifest(mediaType string, data []byte, tag string) ocispec.Descriptor {
	p.t.Helper()
	desc := content.NewDescriptorFromBytes(mediaType, data)
	ctx := context.Background()
	var err error
	if tag != "" {
		err = p.Repo.PushReference(ctx, desc, bytes.NewReader(data), tag)
	} else {
		err = p.Repo.Push(ctx, desc, bytes.NewReader(data))
	}
	if err != nil {
		p.t.Fatalf("push manifest: %v", err)
	}
	return desc
}

// Image pushes a small image (a config and one layer whose bytes are seed)
// and tags it.
func (p *Pusher) Image(tag, seed string) ocispec.Descriptor {
	p.t.Helper()
	config := p.Blob(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	layer := p.Blob(ocispec.MediaTypeImageLayer, []byte(seed))
	return p.Manifest(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
	}, tag)
}

// Index pushes an image index over manifests and tags it.
func (p *Pusher) Index(tag string, manifests ...ocispec.Descriptor) ocispec.Descriptor {
	p.t.Helper()
	return p.Manifest(ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: manifests,
	}, tag)
}

// Attach pushes an artifact manifest of artifactType whose subject is
// subject, with one layer holding data, and returns its descriptor.
func (p *Pusher) Attach(subject ocispec.Descriptor, artifactType, layerType string, data []byte) ocispec.Descriptor {
	p.t.Helper()
	return p.Manifest(ocispec.MediaTypeImageManifest, p.ArtifactManifest(subject, artifactType, layerType, data), "")
}

// ArtifactManifest pushes the layer and returns, without pushing it, the
// artifact manifest Attach would push, for tests that alter it first.
func (p *Pusher) ArtifactManifest(subject ocispec.Descriptor, artifactType, layerType string, data []byte) ocispec.Manifest {
	p.t.Helper()
	empty := p.Blob(ocispec.MediaTypeEmptyJSON, ocispec.DescriptorEmptyJSON.Data)
	empty.Data = ocispec.DescriptorEmptyJSON.Data
	layer := p.Blob(layerType, data)
	s := subject
	return ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: empty.Digest, Size: empty.Size, Data: empty.Data},
		Layers:       []ocispec.Descriptor{layer},
		Subject:      &ocispec.Descriptor{MediaType: s.MediaType, Digest: s.Digest, Size: s.Size},
	}
}

// Digest is a shorthand for digest.FromBytes.
func Digest(data []byte) digest.Digest { return digest.FromBytes(data) }
