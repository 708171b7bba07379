package admission_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/vouch-project/vouch/server/admission"
)

func TestImages(t *testing.T) {
	spec := `{"initContainers":[{"name":"i","image":"init:1"}],"containers":[{"name":"a","image":"app:1"},{"name":"b","image":"app@sha256:` + strings.Repeat("0", 64) + `"}],"ephemeralContainers":[{"name":"d","image":"debug:1"}]}`
	tests := []struct {
		kind, object string
		prefix       string
		want         int
		err          string
	}{
		{"Pod", `{"spec":` + spec + `}`, "/spec", 4, ""},
		{"Deployment", `{"spec":{"template":{"spec":` + spec + `}}}`, "/spec/template/spec", 4, ""},
		{"StatefulSet", `{"spec":{"template":{"spec":` + spec + `}}}`, "/spec/template/spec", 4, ""},
		{"Job", `{"spec":{"template":{"spec":` + spec + `}}}`, "/spec/template/spec", 4, ""},
		{"CronJob", `{"spec":{"jobTemplate":{"spec":{"template":{"spec":` + spec + `}}}}}`, "/spec/jobTemplate/spec/template/spec", 4, ""},
		{"PodTemplate", `{"template":{"spec":` + spec + `}}`, "/template/spec", 4, ""},
		{"Deployment", `{"spec":{}}`, "", 0, ""},
		{"Deployment", `{"spec":{"template":null}}`, "", 0, ""},
		{"Pod", `{"spec":{"containers":"x"}}`, "", 0, "Pod containers"},
		{"Pod", `{"spec":{"containers":[{"image":7}]}}`, "", 0, "containers[0].image"},
		{"Pod", `{"spec":[]}`, "", 0, "pod spec"},
		{"Pod", `{"spec":{"Containers":[{"image":"x"}],"containers":[{"Image":"y"}]}}`, "", 0, ""},
		{"Pod", `[]`, "", 0, "Pod"},
		{"Service", `{}`, "", 0, "holds no pod spec"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			got, err := admission.Images(tt.kind, []byte(tt.object))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("%d images, %v", len(got), err)
			}
			if tt.want == 0 {
				return
			}
			want := []admission.Image{
				{Image: "init:1", Path: tt.prefix + "/initContainers/0/image", Where: `init container "i"`},
				{Image: "app:1", Path: tt.prefix + "/containers/0/image", Where: `container "a"`},
				{Image: "app@sha256:" + strings.Repeat("0", 64), Path: tt.prefix + "/containers/1/image", Where: `container "b"`},
				{Image: "debug:1", Path: tt.prefix + "/ephemeralContainers/0/image", Where: `ephemeral container "d"`},
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("image %d = %+v, want %+v", i, got[i], want[i])
				}
			}
		})
	}
	if _, err := admission.Images("Service", nil); !errors.Is(err, admission.ErrUnsupportedKind) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzImages reads arbitrary objects: no panic, and every path it returns
// points, in the object, at the image it returns with it.
func FuzzImages(f *testing.F) {
	f.Add("Pod", []byte(`{"spec":{"containers":[{"name":"a","image":"x"}],"initContainers":[{"image":"y"}]}}`))
	f.Add("CronJob", []byte(`{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"ephemeralContainers":[{"image":"z"}]}}}}}}`))
	f.Add("Deployment", []byte(`{"spec":{"template":{"spec":{"containers":[{"image":""},{"image":"q"}]}}}}`))
	f.Fuzz(func(t *testing.T, kind string, object []byte) {
		images, err := admission.Images(kind, object)
		if err != nil {
			return
		}
		var doc any
		if len(images) > 0 {
			if err := json.Unmarshal(object, &doc); err != nil {
				t.Fatalf("images from an object Go cannot decode: %q", object)
			}
		}
		for _, im := range images {
			if got := pointer(doc, im.Path); got != im.Image {
				t.Fatalf("%s points at %v, not %q", im.Path, got, im.Image)
			}
		}
	})
}

// pointer resolves a JSON pointer of object keys and array indexes.
func pointer(doc any, path string) any {
	for _, part := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		switch v := doc.(type) {
		case map[string]any:
			doc = v[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i >= len(v) {
				return nil
			}
			doc = v[i]
		default:
			return nil
		}
	}
	return doc
}
