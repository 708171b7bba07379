package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// ErrUnsupportedKind is returned by Images for kinds that hold no pod spec.
var ErrUnsupportedKind = errors.New("kind holds no pod spec")

// Image is one container's image in an object.
type Image struct {
	// Image is the reference as written in the object.
	Image string
	// Path is the JSON pointer (RFC 6901) of the image field, for patches:
	// "/spec/template/spec/containers/0/image".
	Path string
	// Where names the container for messages: `container "app"`,
	// `init container "setup"`, `ephemeral container "debug"`.
	Where string
}

// podSpecPaths are the paths of the pod spec in each kind vouch reads.
var podSpecPaths = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"PodTemplate":           {"template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// Images returns the images of every container, init container and
// ephemeral container of a Pod, or of the pod template of a workload
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
// Job, CronJob, PodTemplate), in the order they appear.
func Images(kind string, object []byte) ([]Image, error) {
	spec, pointer, err := podSpec(kind, object)
	if err != nil || spec == nil {
		return nil, err
	}
	var out []Image
	for _, list := range []struct{ field, what string }{
		{"initContainers", "init container"},
		{"containers", "container"},
		{"ephemeralContainers", "ephemeral container"},
	} {
		data, ok := spec[list.field]
		if !ok || string(data) == "null" {
			continue
		}
		var containers []map[string]json.RawMessage
		if err := json.Unmarshal(data, &containers); err != nil {
			return nil, fmt.Errorf("%s %s at %q: %v", kind, list.field, pointer, err)
		}
		for i, c := range containers {
			var name, image string
			if err := unmarshalOptional(c["name"], &name); err != nil {
				return nil, fmt.Errorf("%s %s[%d].name: %v", kind, list.field, i, err)
			}
			if err := unmarshalOptional(c["image"], &image); err != nil {
				return nil, fmt.Errorf("%s %s[%d].image: %v", kind, list.field, i, err)
			}
			if image == "" {
				continue
			}
			out = append(out, Image{
				Image: image,
				Path:  pointer + "/" + list.field + "/" + strconv.Itoa(i) + "/image",
				Where: fmt.Sprintf("%s %q", list.what, name),
			})
		}
	}
	return out, nil
}

// unmarshalOptional decodes data into v unless it is absent or null.
func unmarshalOptional(data json.RawMessage, v any) error {
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	return json.Unmarshal(data, v)
}

// podSpec returns the fields of the pod spec of an object of kind, and its
// JSON pointer; nil fields when the object has none.
func podSpec(kind string, object []byte) (map[string]json.RawMessage, string, error) {
	path, ok := podSpecPaths[kind]
	if !ok {
		return nil, "", fmt.Errorf("%w: %q", ErrUnsupportedKind, kind)
	}
	raw := json.RawMessage(object)
	pointer := ""
	for _, p := range path {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, "", fmt.Errorf("%s at %q: %v", kind, pointer, err)
		}
		next, ok := fields[p]
		if !ok || string(next) == "null" {
			return nil, "", nil // no pod spec: nothing to check
		}
		raw, pointer = next, pointer+"/"+p
	}
	// Field names match exactly, as the API server's decoder does (Go's
	// encoding/json would also take "Containers" for "containers").
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, "", fmt.Errorf("%s pod spec at %q: %v", kind, pointer, err)
	}
	return spec, pointer, nil
}
