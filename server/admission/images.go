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

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

type podSpec struct {
	Containers          []container `json:"containers"`
	InitContainers      []container `json:"initContainers"`
	EphemeralContainers []container `json:"ephemeralContainers"`
}

// Images returns the images of every container, init container and
// ephemeral container of a Pod, or of the pod template of a workload
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
// Job, CronJob, PodTemplate), in the order they appear.
func Images(kind string, object []byte) ([]Image, error) {
	path, ok := podSpecPaths[kind]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedKind, kind)
	}
	raw := json.RawMessage(object)
	pointer := ""
	for _, p := range path {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, fmt.Errorf("%s at %q: %v", kind, pointer, err)
		}
		next, ok := fields[p]
		if !ok || string(next) == "null" {
			return nil, nil // no pod spec: nothing to check
		}
		raw, pointer = next, pointer+"/"+p
	}
	var spec podSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("%s pod spec at %q: %v", kind, pointer, err)
	}
	var out []Image
	for _, list := range []struct {
		field, what string
		containers  []container
	}{
		{"initContainers", "init container", spec.InitContainers},
		{"containers", "container", spec.Containers},
		{"ephemeralContainers", "ephemeral container", spec.EphemeralContainers},
	} {
		for i, c := range list.containers {
			if c.Image == "" {
				continue
			}
			out = append(out, Image{
				Image: c.Image,
				Path:  pointer + "/" + list.field + "/" + strconv.Itoa(i) + "/image",
				Where: fmt.Sprintf("%s %q", list.what, c.Name),
			})
		}
	}
	return out, nil
}
