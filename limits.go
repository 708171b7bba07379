package vouch

// Limits bound everything vouch reads from outside. The zero value of each
// field means its default; a negative value is invalid. The JSON field names
// are those of the limits section of vouch's config file.
type Limits struct {
	// MaxManifestBytes bounds one manifest or index. Optional; default 4 MiB,
	// the bound oras-go and most registries use.
	MaxManifestBytes int64 `json:"maxManifestBytes,omitempty"`
	// MaxBlobBytes bounds one blob that a verifier reads (a signature
	// envelope, an SBOM, a report). Optional; default 64 MiB.
	MaxBlobBytes int64 `json:"maxBlobBytes,omitempty"`
	// MaxReferrerPages bounds the pages of one referrers listing. Optional;
	// default 50.
	MaxReferrerPages int `json:"maxReferrerPages,omitempty"`
	// MaxDepth bounds the nesting of referrers below a subject (a signature
	// on an SBOM on an image is depth 2). Optional; default 8.
	MaxDepth int `json:"maxDepth,omitempty"`
	// MaxNodes bounds the nodes of one subject's graph. Optional; default
	// 10,000.
	MaxNodes int `json:"maxNodes,omitempty"`
}

// Default limits; see Limits for what each bounds.
const (
	DefaultMaxManifestBytes = 4 << 20
	DefaultMaxBlobBytes     = 64 << 20
	DefaultMaxReferrerPages = 50
	DefaultMaxDepth         = 8
	DefaultMaxNodes         = 10000
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxManifestBytes == 0 {
		l.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if l.MaxBlobBytes == 0 {
		l.MaxBlobBytes = DefaultMaxBlobBytes
	}
	if l.MaxReferrerPages == 0 {
		l.MaxReferrerPages = DefaultMaxReferrerPages
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxNodes == 0 {
		l.MaxNodes = DefaultMaxNodes
	}
	return l
}
