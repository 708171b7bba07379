// Package untrusted handles content from outside (artifacts, registry
// answers, plugin output) before vouch parses it or shows it: JSON depth is
// checked before a decoder allocates, decoder errors are reworded for a
// person, and text is made safe to print.
package untrusted

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text makes s safe to show in a reason, a log or a terminal: invalid UTF-8
// is replaced, control and bidirectional-override characters become spaces,
// surrounding space is trimmed, and the result is cut to at most max bytes
// on a rune boundary, marked with "…".
func Text(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.TrimSpace(s)
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max] + "…"
}

// Cut shortens s to at most n bytes in all, at a rune boundary, marking
// the cut with "…" (which counts in the n). Unlike Text it changes nothing
// else: for text that is already safe and must fit a size limit.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	end := n - len("…")
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + "…"
}

// JSONLen returns at least the bytes that encoding/json writes for s as a
// string, quotes included, and at most six per byte of s plus two: every
// character that it may escape (quote, backslash, control characters, <,
// >, &, U+2028, U+2029, invalid UTF-8) counts six. It bounds details
// before they are built.
func JSONLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r < 0x20, r == '"', r == '\\', r == '<', r == '>', r == '&', r == '\u2028', r == '\u2029', r == utf8.RuneError && size == 1:
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// CheckJSONDepth returns an error when data nests arrays and objects more
// than max levels deep. It reads data once, without allocating, and leaves
// every other judgement of validity to the decoder.
func CheckJSONDepth(data []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for i, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return fmt.Errorf("JSON nested deeper than %d levels (at byte %d)", max, i)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// JSONError rewords encoding/json's syntax and type errors for a report.
func JSONError(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("malformed JSON at byte %d: %v", syn.Offset, syn)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("the document is a JSON %s, not an object", te.Value)
		}
		return fmt.Errorf("%s: expected %s, got %s", te.Field, typeWord(te.Type), te.Value)
	}
	return err
}

// typeWord names a Go type as JSON would.
func typeWord(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}
