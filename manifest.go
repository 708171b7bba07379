package vouch

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"

// manifest is the union of the fields of an OCI manifest and index that the
// walk reads.
type manifest struct {
	ocispec.Manifest
	Manifests []ocispec.Descriptor `json:"manifests,omitempty"`
}

func parseManifest(data []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("malformed manifest: %v", err)
	}
	return &m, nil
}

// artifactType is the manifest's artifactType, else its config media type
// unless that is the empty descriptor's (OCI image-spec, "Guidelines for
// artifact usage").
func (m *manifest) artifactType() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if t := m.Config.MediaType; t != ocispec.MediaTypeEmptyJSON && t != ocispec.MediaTypeImageConfig && t != "application/vnd.docker.container.image.v1+json" {
		return t
	}
	return ""
}

func subjectDigest(d *ocispec.Descriptor) string {
	if d == nil {
		return "none"
	}
	return d.Digest.String()
}
