package vouch

import "slices"

// Artifact types that vouch gives to cosign's tag-layout manifests, which
// carry no artifactType of their own. They are the types cosign itself uses
// when it attaches the same content as OCI 1.1 referrers.
const (
	CosignSignatureType   = "application/vnd.dev.cosign.artifact.sig.v1+json"
	CosignAttestationType = "application/vnd.dev.cosign.artifact.att.v1+json"
	// SigstoreBundleType is the artifact type of Sigstore bundles attached
	// as OCI 1.1 referrers (cosign v3's default), signatures and
	// attestations alike: only the bundle's content tells them apart.
	SigstoreBundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// BuildKitAttestationType is the artifact type vouch gives BuildKit's
	// attestation manifests (`docker buildx build --provenance --sbom`),
	// which carry none: an image index lists them beside the platform
	// manifests, with the annotations vnd.docker.reference.type:
	// attestation-manifest and vnd.docker.reference.digest naming the
	// platform manifest they are about; their layers are unsigned in-toto
	// statements (application/vnd.in-toto+json). See
	// https://docs.docker.com/build/metadata/attestations/attestation-storage/
	BuildKitAttestationType = "application/vnd.docker.attestation-manifest"
)

// Annotations of BuildKit's attestation manifests in an image index.
const (
	AnnotationDockerReferenceType   = "vnd.docker.reference.type"
	AnnotationDockerReferenceDigest = "vnd.docker.reference.digest"
	// DockerReferenceAttestation is vnd.docker.reference.type's value for
	// an attestation manifest.
	DockerReferenceAttestation = "attestation-manifest"
)

// signatureTypes backs SignatureTypes and IsSignature; an array, so that no
// caller can change it.
var signatureTypes = [...]string{
	"application/vnd.cncf.notary.signature",
	CosignSignatureType,
	SigstoreBundleType,
}

// SignatureTypes returns the artifact types of signatures: Notary Project
// signatures, cosign's legacy signatures and Sigstore bundles. The slice is
// the caller's own.
func SignatureTypes() []string {
	return slices.Clone(signatureTypes[:])
}

// IsSignature reports whether artifactType is one of SignatureTypes.
func IsSignature(artifactType string) bool {
	return slices.Contains(signatureTypes[:], artifactType)
}

// DefaultLeafTypes returns the types whose referrers are not looked up
// unless Discovery.LeafTypes says otherwise: the signature types. The slice
// is the caller's own.
func DefaultLeafTypes() []string {
	return SignatureTypes()
}

// IsSignatureNode reports whether n is a signature of its parent: by the
// claims its verifiers report when they report any (a Sigstore bundle may
// be a signature or an attestation), else by its artifact type.
func IsSignatureNode(n *Node) bool {
	claimed := false
	for _, r := range n.Results {
		for _, c := range r.Claims {
			if c.Kind != ClaimSignature {
				return false
			}
			claimed = true
		}
	}
	return claimed || IsSignature(n.ArtifactType)
}
