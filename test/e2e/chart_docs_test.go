//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The values table of docs/install.md lies between these lines.
const (
	valuesTableBegin = "<!-- values table: generated from charts/vouch/values.yaml; VOUCH_UPDATE_DOCS=1 go test ./test/e2e -run TestChartValuesTable -->"
	valuesTableEnd   = "<!-- end of values table -->"
)

// TestChartValuesTable checks that every value of charts/vouch/values.yaml
// has a comment, and that docs/install.md's values table is the one those
// comments make. With VOUCH_UPDATE_DOCS=1 it writes the table instead.
func TestChartValuesTable(t *testing.T) {
	table, err := valuesTable(mustRead(t, filepath.Join(chartDir, "values.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	const docPath = "../../docs/install.md"
	doc := string(mustRead(t, docPath))
	begin, end := strings.Index(doc, valuesTableBegin), strings.Index(doc, valuesTableEnd)
	if begin < 0 || end < begin {
		t.Fatalf("docs/install.md has no lines %q ... %q around its values table", valuesTableBegin, valuesTableEnd)
	}
	updated := doc[:begin] + valuesTableBegin + "\n\n" + table + "\n" + doc[end:]
	if updated == doc {
		return
	}
	if os.Getenv("VOUCH_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(docPath, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("docs/install.md: values table written")
		return
	}
	t.Errorf("docs/install.md's values table is not what charts/vouch/values.yaml's comments make; regenerate it with\n  VOUCH_UPDATE_DOCS=1 go test ./test/e2e -run TestChartValuesTable")
}

// valuesTable makes a Markdown table of the values in a values.yaml: one
// row per value (a key whose value is a scalar, a list, or a map none of
// whose keys has a comment of its own), with its default and the comment
// above it. A value without a comment is an error.
func valuesTable(data []byte) (string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return "", fmt.Errorf("values.yaml is not one mapping")
	}
	var b strings.Builder
	b.WriteString("| value | default | description |\n|---|---|---|\n")
	var missing []string
	var walk func(prefix string, m *yaml.Node) error
	walk = func(prefix string, m *yaml.Node) error {
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, value := m.Content[i], m.Content[i+1]
			path := prefix + key.Value
			if value.Kind == yaml.MappingNode && hasCommentedKey(value) {
				if err := walk(path+".", value); err != nil {
					return err
				}
				continue
			}
			comment := commentText(key.HeadComment)
			if comment == "" {
				missing = append(missing, path)
				continue
			}
			var v any
			if err := value.Decode(&v); err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			def, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", path, cell(string(def)), cell(comment))
		}
		return nil
	}
	if err := walk("", doc.Content[0]); err != nil {
		return "", err
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("charts/vouch/values.yaml: no comment above %s: document every value", strings.Join(missing, ", "))
	}
	return b.String(), nil
}

// hasCommentedKey reports whether a mapping has a key with a comment, at
// any depth.
func hasCommentedKey(m *yaml.Node) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if commentText(m.Content[i].HeadComment) != "" {
			return true
		}
		if v := m.Content[i+1]; v.Kind == yaml.MappingNode && hasCommentedKey(v) {
			return true
		}
	}
	return false
}

// commentText joins the lines of a comment block without their "#".
// Only the block right above the key counts (yaml.v3 keeps a block
// separated by a blank line before it, which is not the key's).
func commentText(c string) string {
	if i := strings.LastIndex(c, "\n\n"); i >= 0 {
		c = c[i+2:]
	}
	var words []string
	for _, line := range strings.Split(c, "\n") {
		if line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#")); line != "" {
			words = append(words, line)
		}
	}
	return strings.Join(words, " ")
}

// cell escapes a table cell's pipes.
func cell(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("|"), []byte(`\|`)))
}

// TestValuesTableRefuses checks that the generator refuses a value
// without a comment, and makes a row for a map whose keys have none.
func TestValuesTableRefuses(t *testing.T) {
	if _, err := valuesTable([]byte("# Documented.\na: 1\nb: 2\n")); err == nil || !strings.Contains(err.Error(), "no comment above b") {
		t.Errorf("a value without a comment: %v, want an error naming b", err)
	}
	table, err := valuesTable([]byte("group:\n  # The limits.\n  limits: {cpu: 1}\n"))
	if err != nil || !strings.Contains(table, "| `group.limits` | `{\"cpu\":1}` | The limits. |") {
		t.Errorf("table %q, %v", table, err)
	}
}
