package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vouch-project/vouch/server/admission"
)

// Defaults of ManifestOptions.
const (
	// DefaultMaxManifestBytes bounds one input (a file or standard input).
	DefaultMaxManifestBytes = 32 << 20
	// DefaultMaxObjects bounds the objects of one input, a List's items
	// counted one by one.
	DefaultMaxObjects = 10000
)

// ManifestOptions configure ReadManifests. The zero value is usable.
type ManifestOptions struct {
	// Namespace is the namespace of objects whose manifest names none, as
	// `kubectl apply -n` and `helm template -n` take it. Optional; default
	// "default".
	Namespace string
	// MaxBytes bounds the input. Optional; default DefaultMaxManifestBytes.
	MaxBytes int64
	// MaxObjects bounds the objects read. Optional; default
	// DefaultMaxObjects.
	MaxObjects int
}

// ManifestError is input that cannot be read as Kubernetes manifests. It
// names the input and the document ("deploy.yaml: document 3").
type ManifestError struct {
	// Where names the input, and the document when the error is in one:
	// "deploy.yaml: document 3", "list.json: document 1, items[2]".
	Where string
	// Err says what is wrong.
	Err error
}

func (e *ManifestError) Error() string { return e.Where + ": " + e.Err.Error() }
func (e *ManifestError) Unwrap() error { return e.Err }

// podSpecGroups are the API groups whose kinds hold the pod specs that
// admission.Images reads; a kind of the same name in another group (a
// custom resource called Job) is not read as one.
var podSpecGroups = map[string][]string{
	"Pod":                   {""},
	"ReplicationController": {""},
	"PodTemplate":           {""},
	"Deployment":            {"apps", "extensions"},
	"StatefulSet":           {"apps"},
	"DaemonSet":             {"apps", "extensions"},
	"ReplicaSet":            {"apps", "extensions"},
	"Job":                   {"batch"},
	"CronJob":               {"batch"},
}

// Manifests is what ReadManifests found in one input.
type Manifests struct {
	// Objects counts the objects read, workloads or not.
	Objects int
	// Workloads are the objects that run containers, in input order.
	Workloads []Workload
}

// ReadManifests reads the Kubernetes objects of one input, named name in
// errors and in each Workload's Source: YAML with any number of documents
// ("---"), a JSON object or a stream of them, and Lists (kind ending in
// "List" with items, as `kubectl get -o yaml` writes). Objects of kinds
// that hold no pod spec (ConfigMaps, Services, custom resources) are
// counted and skipped. At most opts.MaxBytes are read.
func ReadManifests(name string, r io.Reader, opts ManifestOptions) (*Manifests, error) {
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxManifestBytes
	}
	if opts.MaxObjects <= 0 {
		opts.MaxObjects = DefaultMaxObjects
	}
	data, err := io.ReadAll(io.LimitReader(r, opts.MaxBytes+1))
	if err != nil {
		return nil, &ManifestError{Where: name, Err: err}
	}
	if int64(len(data)) > opts.MaxBytes {
		return nil, &ManifestError{Where: name, Err: fmt.Errorf("more than %d bytes", opts.MaxBytes)}
	}
	m := &Manifests{}
	rd := &reader{name: name, opts: opts, out: m}
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		err = rd.json(data)
	} else {
		err = rd.yaml(data)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// reader reads one input's documents into out.
type reader struct {
	name string
	opts ManifestOptions
	out  *Manifests
}

// yaml reads YAML documents. Their values are turned into JSON, which
// admission.Images reads as it reads the API server's objects.
func (rd *reader) yaml(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for n := 1; ; n++ {
		where := fmt.Sprintf("%s: document %d", rd.name, n)
		var raw any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return &ManifestError{Where: where, Err: fmt.Errorf("not YAML: %v", err)}
		}
		if raw == nil {
			continue // empty, or comments only (helm template writes these)
		}
		v, err := jsonValue(raw, "")
		if err != nil {
			return &ManifestError{Where: where, Err: err}
		}
		if err := rd.document(v, where); err != nil {
			return err
		}
	}
}

// json reads a JSON value or a stream of them; a top-level array is read
// as a List's items.
func (rd *reader) json(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for n := 1; ; n++ {
		where := fmt.Sprintf("%s: document %d", rd.name, n)
		var v any
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return &ManifestError{Where: where, Err: fmt.Errorf("not JSON: %v", err)}
		}
		if items, ok := v.([]any); ok {
			if err := rd.items(items, where); err != nil {
				return err
			}
			continue
		}
		if err := rd.document(v, where); err != nil {
			return err
		}
	}
}

// document reads one document: an object, or a List of them.
func (rd *reader) document(v any, where string) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return &ManifestError{Where: where, Err: fmt.Errorf("not a Kubernetes object (a %s, not a mapping with apiVersion and kind)", typeName(v))}
	}
	if kind, _ := obj["kind"].(string); strings.HasSuffix(kind, "List") {
		if items, ok := obj["items"].([]any); ok || obj["items"] == nil {
			return rd.items(items, where)
		}
		return &ManifestError{Where: where, Err: fmt.Errorf("items: expected a list, got a %s", typeName(obj["items"]))}
	}
	return rd.object(obj, where)
}

func (rd *reader) items(items []any, where string) error {
	for i, item := range items {
		w := fmt.Sprintf("%s, items[%d]", where, i)
		obj, ok := item.(map[string]any)
		if !ok {
			return &ManifestError{Where: w, Err: fmt.Errorf("not a Kubernetes object (a %s)", typeName(item))}
		}
		if err := rd.object(obj, w); err != nil {
			return err
		}
	}
	return nil
}

// object reads one object; a workload's containers become a Workload.
func (rd *reader) object(obj map[string]any, where string) error {
	rd.out.Objects++
	if rd.out.Objects > rd.opts.MaxObjects {
		return &ManifestError{Where: rd.name, Err: fmt.Errorf("more than %d objects", rd.opts.MaxObjects)}
	}
	apiVersion, err := stringField(obj, "apiVersion")
	if err == nil && apiVersion == "" {
		err = errors.New("apiVersion: required")
	}
	if err != nil {
		return &ManifestError{Where: where, Err: err}
	}
	kind, err := stringField(obj, "kind")
	if err == nil && kind == "" {
		err = errors.New("kind: required")
	}
	if err != nil {
		return &ManifestError{Where: where, Err: err}
	}
	group, _, _ := strings.Cut(apiVersion, "/")
	if !strings.Contains(apiVersion, "/") {
		group = "" // the core group: "v1"
	}
	groups, ok := podSpecGroups[kind]
	if !ok || !slices.Contains(groups, group) {
		return nil
	}
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		return &ManifestError{Where: where, Err: fmt.Errorf("metadata: required (%s %s)", kind, apiVersion)}
	}
	name, err := stringField(meta, "name")
	if err != nil {
		return &ManifestError{Where: where, Err: fmt.Errorf("metadata.%v", err)}
	}
	if name == "" {
		generate, _ := meta["generateName"].(string)
		if generate == "" {
			return &ManifestError{Where: where, Err: fmt.Errorf("metadata.name: required (%s %s)", kind, apiVersion)}
		}
		name = generate + "*"
	}
	namespace, err := stringField(meta, "namespace")
	if err != nil {
		return &ManifestError{Where: where, Err: fmt.Errorf("metadata.%v", err)}
	}
	if namespace == "" {
		namespace = rd.opts.Namespace
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return &ManifestError{Where: where, Err: err}
	}
	images, err := admission.Images(kind, data)
	if err != nil {
		return &ManifestError{Where: where, Err: fmt.Errorf("%s %s: %v", kind, name, err)}
	}
	w := Workload{Namespace: namespace, Kind: kind, Name: name, Source: where}
	for _, im := range images {
		w.Containers = append(w.Containers, Container{Container: im.Where, Image: im.Image})
	}
	rd.out.Workloads = append(rd.out.Workloads, w)
	return nil
}

// stringField returns obj[key] when it is a string or absent.
func stringField(obj map[string]any, key string) (string, error) {
	v, ok := obj[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: expected a string, got a %s", key, typeName(v))
	}
	return s, nil
}

// jsonValue turns a value decoded from YAML into one encoding/json
// writes: mappings with other keys than strings are refused, by path.
func jsonValue(v any, path string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := jsonValue(e, path+"."+k)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("%s: a mapping key is a %s (%v), not a string", strings.TrimPrefix(path, "."), typeName(k), k)
			}
			c, err := jsonValue(e, path+"."+ks)
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		for i, e := range t {
			c, err := jsonValue(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	}
	return v, nil
}

// typeName names a decoded value's type for messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case map[string]any, map[any]any:
		return "mapping"
	default:
		return "number"
	}
}
