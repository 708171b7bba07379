package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vouch-project/vouch/internal/duration"
)

// decodeStrict decodes YAML or JSON into out (a pointer to a struct),
// refusing unknown fields with the field's path ("policy.scopes[0].mod").
func decodeStrict(data []byte, out any) error {
	var raw any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the file is empty")
		}
		return fmt.Errorf("parse: %v", err)
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return errors.New("parse: more than one YAML document")
	}
	if raw == nil {
		return errors.New("the file is empty")
	}
	return decodeValue(raw, out, "")
}

// decodeValue decodes raw, a value decoded from YAML, into out (a pointer
// to a struct), strictly; errors name fields by their path below path.
func decodeValue(raw any, out any, path string) error {
	if err := checkFields(raw, reflect.TypeOf(out).Elem(), path); err != nil {
		return err
	}
	j, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("parse: %v", err)
	}
	jd := json.NewDecoder(bytes.NewReader(j))
	jd.DisallowUnknownFields()
	if err := jd.Decode(out); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s: expected %s, got %s", join(path, te.Field), typeName(te.Type), te.Value)
		}
		return err
	}
	return nil
}

// checkFields walks raw (as decoded from YAML) alongside the Go type t and
// reports the first key that t has no field for.
func checkFields(raw any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch v := raw.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Struct:
			if t == reflect.TypeOf(Duration{}) {
				return nil
			}
			fields := jsonFields(t)
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				ft, ok := fields[k]
				if !ok {
					return fmt.Errorf("%s: unknown field (known fields: %s)", join(path, k), knownFields(fields))
				}
				if err := checkFields(v[k], ft, join(path, k)); err != nil {
					return err
				}
			}
		case reflect.Map:
			for k, item := range v {
				if err := checkFields(item, t.Elem(), join(path, k)); err != nil {
					return err
				}
			}
		case reflect.Interface:
		default:
			return fmt.Errorf("%s: expected %s, got an object", orTop(path), typeName(t))
		}
	case []any:
		if t.Kind() == reflect.Interface {
			return nil // any value fits
		}
		if t.Kind() != reflect.Slice {
			return fmt.Errorf("%s: expected %s, got a list", orTop(path), typeName(t))
		}
		for i, item := range v {
			if err := checkFields(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of t's fields to their types, with the
// fields of embedded structs without a name (`json:",inline"`) as t's own,
// as encoding/json reads them.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for n, ft := range jsonFields(f.Type) {
				fields[n] = ft
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

func knownFields(fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if t == reflect.TypeOf(Duration{}) {
			return "a duration such as 2s"
		}
		return "an object"
	case reflect.Slice:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	}
	return t.String()
}

// Duration is a time.Duration written as a string ("2s", "1m30s"), as
// the config file's durations are.
type Duration = duration.Duration
