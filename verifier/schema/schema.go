// Package schema validates JSON artifacts (an SBOM, a vulnerability report,
// an in-house attestation, any referrer whose layer is JSON) against a JSON
// Schema, with santhosh-tekuri/jsonschema: drafts 2020-12, 2019-09, 7, 6
// and 4, chosen by the schema's "$schema" (https://json-schema.org/specification).
//
// Schemas are read and compiled once, in New, from local files. A schema
// named by URL is pinned to a local copy (Config.SchemaFile, and
// Config.Resources for the schemas it refers to); nothing is fetched from
// the network unless Config.AllowNetworkFetch says so, and even then only in
// New, bounded by MaxSchemaBytes and FetchTimeout, never while verifying.
package schema

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-project/vouch/internal/untrusted"
	"github.com/vouch-project/vouch/trust"
	"github.com/vouch-project/vouch/verifier/internal/layer"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vouch-project/vouch"
)

// Bounds on what the verifier reads besides the artifacts' blobs, which the
// store bounds by its max-blob-bytes limit.
const (
	// DefaultMaxDepth bounds the nesting of arrays and objects in a
	// validated document and in a schema when Config.MaxDepth is zero.
	DefaultMaxDepth = 128
	// MaxSchemaBytes bounds one schema document, from a file or the network.
	MaxSchemaBytes = 8 << 20
	// FetchTimeout bounds one schema download (Config.AllowNetworkFetch).
	FetchTimeout = 10 * time.Second
	// MaxReasonErrors is how many validation errors a result's reason
	// lists; Details lists up to MaxDetailErrors.
	MaxReasonErrors = 3
	// MaxDetailErrors is how many validation errors Details carries.
	MaxDetailErrors = 20
)

// Drafts that Config.DefaultDraft names.
var drafts = map[string]*jsonschema.Draft{
	"2020-12": jsonschema.Draft2020,
	"2019-09": jsonschema.Draft2019,
	"7":       jsonschema.Draft7,
	"6":       jsonschema.Draft6,
	"4":       jsonschema.Draft4,
}

// Config is the `schema:` section of a verifier in vouch's config file.
//
// +kubebuilder:object:generate=true
type Config struct {
	// ArtifactTypes lists the referrer artifact types the verifier checks,
	// such as "application/spdx+json". Required.
	ArtifactTypes []string `json:"artifactTypes"`
	// Schema is the schema's file, relative to the config file's folder.
	// Relative "$ref"s in it name files beside it. Required unless
	// SchemaURL is set; not both.
	Schema string `json:"schema,omitempty"`
	// SchemaName, when set, is how reports name Schema: the path as the
	// config file writes it, before it was resolved. Not read from the
	// config file. Optional; default Schema.
	SchemaName string `json:"-"`
	// SchemaURL is the URL the schema is known by (its "$id"); "$ref"s
	// relative to it resolve against it. Optional; with it, SchemaFile (the
	// pinned local copy) is required unless AllowNetworkFetch is true.
	SchemaURL string `json:"schemaURL,omitempty"`
	// SchemaFile is the local copy of SchemaURL. Optional; see SchemaURL.
	// Config file only.
	SchemaFile string `json:"schemaFile,omitempty"`
	// SchemaRef is a Secret or ConfigMap key holding the schema: Schema in
	// a custom resource. Optional.
	SchemaRef *trust.Ref `json:"schemaRef,omitempty"`
	// SchemaFileRef is a Secret or ConfigMap key holding the local copy of
	// SchemaURL: SchemaFile in a custom resource. Optional.
	SchemaFileRef *trust.Ref `json:"schemaFileRef,omitempty"`
	// Resources pin other schemas that "$ref"s name by URL to local files.
	// Optional.
	Resources []Resource `json:"resources,omitempty"`
	// AllowNetworkFetch lets New download schemas named by http(s) URLs
	// that are not pinned, each bounded by MaxSchemaBytes and FetchTimeout.
	// Verification then depends on what a web server answered at start-up:
	// prefer pinned files. Optional; default false.
	AllowNetworkFetch bool `json:"allowNetworkFetch,omitempty"`
	// DefaultDraft is the draft for schemas without "$schema": "2020-12",
	// "2019-09", "7", "6" or "4". Optional; default "2020-12".
	DefaultDraft string `json:"defaultDraft,omitempty"`
	// AssertFormat makes "format" an assertion ("date-time", "email", …)
	// in every draft; by default drafts 2019-09 and 2020-12 treat it as an
	// annotation. Optional; default false.
	AssertFormat bool `json:"assertFormat,omitempty"`
	// LayerMediaType picks the layer to validate: the one layer of this
	// media type. Optional; default the manifest's only layer, else the one
	// layer whose media type is the artifact type.
	LayerMediaType string `json:"layerMediaType,omitempty"`
	// MaxDepth bounds the nesting of arrays and objects in a document.
	// Optional; default 128.
	MaxDepth int `json:"maxDepth,omitempty"`
}

// Resource pins a schema that is named by URL to a local file.
//
// +kubebuilder:object:generate=true
type Resource struct {
	// URL is the schema's URL, as "$ref"s name it. Required.
	URL string `json:"url"`
	// File is its local copy, relative to the config file's folder.
	// Required in a config file.
	File string `json:"file,omitempty"`
	// Ref is a Secret or ConfigMap key holding the local copy: File in a
	// custom resource.
	Ref *trust.Ref `json:"ref,omitempty"`
}

// Validate checks c without reading any file; errors name the field by its
// path below prefix.
func (c *Config) Validate(prefix string) error {
	if len(c.ArtifactTypes) == 0 {
		return fmt.Errorf("%s.artifactTypes: required: the artifact types to validate", prefix)
	}
	for i, t := range c.ArtifactTypes {
		if strings.TrimSpace(t) == "" {
			return fmt.Errorf("%s.artifactTypes[%d]: empty", prefix, i)
		}
	}
	switch {
	case c.Schema == "" && c.SchemaRef == nil && c.SchemaURL == "":
		return fmt.Errorf("%s.schema: required (or schemaURL with schemaFile)", prefix)
	case (c.Schema != "" || c.SchemaRef != nil) && c.SchemaURL != "":
		return fmt.Errorf("%s.schemaURL: set schema or schemaURL, not both", prefix)
	case c.Schema != "" && c.SchemaFile != "":
		return fmt.Errorf("%s.schemaFile: only with schemaURL; schema is the file already", prefix)
	}
	if c.SchemaURL != "" {
		if err := checkURL(c.SchemaURL); err != nil {
			return fmt.Errorf("%s.schemaURL: %v", prefix, err)
		}
		if c.SchemaFile == "" && c.SchemaFileRef == nil && !(c.AllowNetworkFetch && isNetwork(c.SchemaURL)) {
			return fmt.Errorf("%s.schemaFile: required with schemaURL %s: vouch does not fetch schemas from the network unless allowNetworkFetch is true (and the URL is http or https); pin a local copy", prefix, c.SchemaURL)
		}
	}
	seen := map[string]bool{}
	for i, r := range c.Resources {
		p := fmt.Sprintf("%s.resources[%d]", prefix, i)
		if err := checkURL(r.URL); err != nil {
			return fmt.Errorf("%s.url: %v", p, err)
		}
		if r.File == "" && r.Ref == nil {
			return fmt.Errorf("%s.file: required", p)
		}
		key := strings.TrimSuffix(r.URL, "#")
		if seen[key] || key == strings.TrimSuffix(c.SchemaURL, "#") {
			return fmt.Errorf("%s.url: %s is pinned twice", p, r.URL)
		}
		seen[key] = true
	}
	if c.DefaultDraft != "" && drafts[c.DefaultDraft] == nil {
		return fmt.Errorf("%s.defaultDraft: %q is not one of 2020-12, 2019-09, 7, 6, 4", prefix, c.DefaultDraft)
	}
	if c.MaxDepth < 0 {
		return fmt.Errorf("%s.maxDepth: cannot be negative", prefix)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q has a fragment; name the schema document", s)
	}
	return nil
}

func isNetwork(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https")
}

// Verifier validates JSON layers against one compiled schema. It is safe for
// concurrent use.
type Verifier struct {
	name       string
	types      map[string]bool
	layerType  string
	maxDepth   int
	schema     *jsonschema.Schema
	schemaName string
}

// New reads and compiles the schema that c names (and every schema it
// refers to) and builds the verifier named name; file paths in c are read
// as given (vouch's config package resolves relative ones against the
// config file's folder first). A "$ref" to an http(s) URL that is neither
// pinned in c.Resources nor allowed by c.AllowNetworkFetch is an error
// here.
func New(name string, c Config) (*Verifier, error) {
	if err := c.Validate("schema"); err != nil {
		return nil, err
	}
	if c.SchemaRef != nil || c.SchemaFileRef != nil || slices.ContainsFunc(c.Resources, func(r Resource) bool { return r.Ref != nil }) {
		return nil, fmt.Errorf("schema: schemas from Secret or ConfigMap references are not read yet: %w", trust.ErrNoResolver)
	}
	maxDepth := c.MaxDepth
	if maxDepth == 0 {
		maxDepth = DefaultMaxDepth
	}
	l := &loader{maxDepth: maxDepth}
	if c.AllowNetworkFetch {
		l.client = &http.Client{Timeout: FetchTimeout}
	}
	comp := jsonschema.NewCompiler()
	comp.UseLoader(l)
	comp.DefaultDraft(jsonschema.Draft2020)
	if c.DefaultDraft != "" {
		comp.DefaultDraft(drafts[c.DefaultDraft])
	}
	if c.AssertFormat {
		comp.AssertFormat()
	}
	for i, r := range c.Resources {
		doc, err := l.readFile(r.File)
		if err != nil {
			return nil, fmt.Errorf("schema.resources[%d].file: %w", i, err)
		}
		if err := comp.AddResource(r.URL, doc); err != nil {
			return nil, fmt.Errorf("schema.resources[%d]: %w", i, err)
		}
	}
	loc, schemaName := c.SchemaURL, c.SchemaURL
	if c.Schema != "" {
		abs, err := filepath.Abs(c.Schema)
		if err != nil {
			return nil, fmt.Errorf("schema.schema: %w", err)
		}
		loc, schemaName = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), c.Schema
		if c.SchemaName != "" {
			schemaName = c.SchemaName
		}
	} else if c.SchemaFile != "" {
		doc, err := l.readFile(c.SchemaFile)
		if err != nil {
			return nil, fmt.Errorf("schema.schemaFile: %w", err)
		}
		if err := comp.AddResource(c.SchemaURL, doc); err != nil {
			return nil, fmt.Errorf("schema.schemaFile: %w", err)
		}
	}
	sch, err := comp.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("schema: compile %s: %w", schemaName, err)
	}
	types := map[string]bool{}
	for _, t := range c.ArtifactTypes {
		types[t] = true
	}
	return &Verifier{name: name, types: types, layerType: c.LayerMediaType, maxDepth: maxDepth, schema: sch, schemaName: schemaName}, nil
}

// Name returns the verifier's name in reports.
func (v *Verifier) Name() string { return v.name }

// Handles reports whether artifactType is one of Config.ArtifactTypes.
func (v *Verifier) Handles(artifactType string) bool { return v.types[artifactType] }

// Verify validates one layer of req.Artifact against the schema.
//
// Outcomes: Passed when the document is valid; Failed when it is not (the
// reason lists the first MaxReasonErrors errors with their instance paths,
// such as `at /packages/0/name: missing property "name"`), when it is not
// JSON, or when the manifest has no layer to validate or cannot say which.
// An error is returned when the layer cannot be fetched (including a layer
// over the store's max-blob-bytes) or nests deeper than MaxDepth.
func (v *Verifier) Verify(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
	layer, why := v.pickLayer(req)
	if why != "" {
		return vouch.Fail(why, nil), nil
	}
	data, err := req.Repository.Fetch(ctx, layer)
	if err != nil {
		return vouch.Result{}, fmt.Errorf("fetch layer: %w", err)
	}
	return v.validate(data, layer)
}

// validate checks one fetched document; Verify's outcomes.
func (v *Verifier) validate(data []byte, layer ocispec.Descriptor) (vouch.Result, error) {
	details := map[string]any{"schema": v.schemaName, "layer": layer.Digest.String()}
	if err := untrusted.CheckJSONDepth(data, v.maxDepth); err != nil {
		return vouch.Result{}, &vouch.LimitError{Limit: "maxDepth", What: "the JSON nesting of layer " + layer.Digest.String(), Value: -1, Max: int64(v.maxDepth)}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return vouch.Fail(fmt.Sprintf("layer %s (%s) is not JSON: %v", vouch.ShortDigest(layer.Digest), layer.MediaType, err), details), nil
	}
	err = v.schema.Validate(doc)
	if err == nil {
		return vouch.Pass("valid against schema "+v.schemaName, details), nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return vouch.Result{}, fmt.Errorf("validate: %w", err)
	}
	found := leaves(verr)
	list := make([]map[string]any, 0, min(len(found), MaxDetailErrors))
	for _, e := range found[:min(len(found), MaxDetailErrors)] {
		list = append(list, map[string]any{"instanceLocation": e.instance, "keywordLocation": e.keyword, "message": e.message})
	}
	details["errors"] = list
	details["errorCount"] = len(found)
	var parts []string
	for _, e := range found[:min(len(found), MaxReasonErrors)] {
		parts = append(parts, e.String())
	}
	reason := fmt.Sprintf("not valid against schema %s: %s", v.schemaName, strings.Join(parts, "; "))
	if n := len(found) - MaxReasonErrors; n > 0 {
		reason += fmt.Sprintf(" (and %d more)", n)
	}
	return vouch.Fail(reason, details), nil
}

// pickLayer chooses the layer to validate, or says why none can be: the
// one layer of Config.LayerMediaType when that is set (layer.Strict), else
// the one layer whose media type is the artifact type, or the only layer
// (layer.OnlyLayer).
func (v *Verifier) pickLayer(req *vouch.VerifyRequest) (ocispec.Descriptor, string) {
	layers := req.Manifest.Layers
	want, fallback := v.layerType, layer.Strict
	if want == "" {
		want, fallback = req.Artifact.ArtifactType, layer.OnlyLayer
	}
	l, matched, ok := layer.Pick(layers, func(t string) bool { return t == want }, fallback)
	switch {
	case ok:
		return l, ""
	case len(layers) == 0:
		return ocispec.Descriptor{}, "the artifact has no layer to validate"
	case matched > 1:
		return ocispec.Descriptor{}, fmt.Sprintf("the artifact has %d layers of media type %s: cannot tell which to validate", matched, want)
	case v.layerType != "":
		return ocispec.Descriptor{}, fmt.Sprintf("the artifact has no layer of media type %s (layerMediaType)", want)
	default:
		return ocispec.Descriptor{}, fmt.Sprintf("the artifact has %d layers and none of media type %s: set layerMediaType to say which to validate", len(layers), want)
	}
}

// violation is one leaf of a validation error tree.
type violation struct {
	instance, keyword, message string
}

func (e violation) String() string {
	loc := e.instance
	if loc == "" {
		loc = "/"
	}
	return "at " + loc + ": " + e.message
}

// leaves returns the errors at the leaves of verr's tree (the ones that say
// what is wrong, not which combinator failed), sorted by instance location
// so that reasons do not change from run to run.
func leaves(verr *jsonschema.ValidationError) []violation {
	var out []violation
	var walk func(u *jsonschema.OutputUnit)
	walk = func(u *jsonschema.OutputUnit) {
		if len(u.Errors) == 0 && u.Error != nil {
			kw := u.AbsoluteKeywordLocation
			if kw == "" {
				kw = u.KeywordLocation
			}
			out = append(out, violation{instance: untrusted.Text(u.InstanceLocation, MaxMessageBytes), keyword: untrusted.Text(kw, MaxMessageBytes), message: untrusted.Text(u.Error.String(), MaxMessageBytes)})
		}
		for i := range u.Errors {
			walk(&u.Errors[i])
		}
	}
	walk(verr.DetailedOutput())
	sort.SliceStable(out, func(i, j int) bool {
		if c := comparePointers(out[i].instance, out[j].instance); c != 0 {
			return c < 0
		}
		if out[i].keyword != out[j].keyword {
			return out[i].keyword < out[j].keyword
		}
		return out[i].message < out[j].message
	})
	return out
}

// comparePointers orders JSON Pointers token by token, array indexes as
// numbers: "/a/2" before "/a/10".
func comparePointers(a, b string) int {
	at, bt := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(at) && i < len(bt); i++ {
		if at[i] == bt[i] {
			continue
		}
		an, aerr := strconv.Atoi(at[i])
		bn, berr := strconv.Atoi(bt[i])
		if aerr == nil && berr == nil {
			return cmp.Compare(an, bn)
		}
		return strings.Compare(at[i], bt[i])
	}
	return cmp.Compare(len(at), len(bt))
}

// MaxMessageBytes bounds each path and message of a validation error, which
// quote the document's keys and values.
const MaxMessageBytes = 256

// loader reads the schemas that the compiler asks for: local files, and
// http(s) URLs only when client is set (Config.AllowNetworkFetch).
type loader struct {
	maxDepth int
	client   *http.Client
}

// Load implements jsonschema.URLLoader.
func (l *loader) Load(s string) (any, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "file":
		return l.readFile(filepath.FromSlash(u.Path))
	case "http", "https":
		if l.client == nil {
			return nil, fmt.Errorf("not fetched: vouch does not fetch schemas from the network; pin %s to a local file in resources (or set allowNetworkFetch)", s)
		}
		return l.fetch(s)
	default:
		return nil, fmt.Errorf("unsupported URL scheme %q", u.Scheme)
	}
}

func (l *loader) readFile(path string) (any, error) {
	data, err := untrusted.ReadFile(path, MaxSchemaBytes)
	if err != nil {
		return nil, err
	}
	return l.decode(bytes.NewReader(data), path)
}

func (l *loader) fetch(s string) (any, error) {
	// The client's Timeout bounds the whole exchange, body included.
	req, err := http.NewRequest(http.MethodGet, s, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/schema+json, application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", s, resp.Status)
	}
	return l.decode(resp.Body, s)
}

// decode reads one schema document, bounded by MaxSchemaBytes and maxDepth.
func (l *loader) decode(r io.Reader, name string) (any, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSchemaBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSchemaBytes {
		return nil, &vouch.LimitError{Limit: "MaxSchemaBytes", What: "schema " + name, Value: -1, Max: MaxSchemaBytes}
	}
	if err := untrusted.CheckJSONDepth(data, l.maxDepth); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("schema %s is not JSON: %w", name, err)
	}
	return doc, nil
}
