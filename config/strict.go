package config

// DecodeStrict decodes raw, a value decoded from YAML or JSON into an any
// (go.yaml.in/yaml/v3's Decode), into out, a pointer to a struct with JSON
// tags, as strictly as the config file is read: an unknown field or a value
// of the wrong type is an error that names its path below path
// ("spec.parameters.useHtp: unknown field (known fields: …)"). It is the
// config file's decoder, for other documents vouch reads, such as Ratify's
// resources (migrate/ratify).
func DecodeStrict(raw any, out any, path string) error {
	return decodeValue(raw, out, path)
}
