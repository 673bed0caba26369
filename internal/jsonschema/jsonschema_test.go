package jsonschema

import (
	"strings"
	"testing"
)

const testSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object", "required": ["n", "when", "list"], "additionalProperties": false,
  "properties": {
    "n": {"type": "integer"},
    "when": {"type": "string", "format": "date-time"},
    "state": {"type": "string", "enum": ["INIT", "MASTER"]},
    "list": {"type": "array", "items": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}},
    "m": {"type": "object", "additionalProperties": {"type": "integer"}}
  }
}`

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want []string // substrings of the violations, sorted; none: valid
	}{
		{`{"n": 1, "when": "2026-11-29T23:59:59.123Z", "state": "MASTER", "list": [{"ok": true}], "m": {"a": 2}}`, nil},
		{`{"n": 1.5, "when": "2026-11-29T23:59:59Z", "list": []}`, []string{"/n: 1.5 is not of type integer"}},
		{`{"n": 1, "when": "yesterday", "list": []}`, []string{`/when: "yesterday" is not an RFC 3339`}},
		{`{"n": 1, "when": "2026-11-29T23:59:59Z", "list": [], "state": "BACKUP"}`, []string{`/state: "BACKUP" is not one of`}},
		{`{"n": 1, "when": "2026-11-29T23:59:59Z"}`, []string{`required member "list" missing`}},
		{`{"n": 1, "when": "2026-11-29T23:59:59Z", "list": [{}], "x": 1}`, []string{`/: member "x" is not allowed`, `/list/0: required member "ok" missing`}},
		{`{"n": 1, "when": "2026-11-29T23:59:59Z", "list": [], "m": {"a": "b"}}`, []string{`/m/a: "b" is not of type integer`}},
		{`[]`, []string{"/: [] is not of type object"}},
	} {
		errs, err := Validate([]byte(testSchema), []byte(tc.doc))
		if err != nil {
			t.Fatalf("%s: %v", tc.doc, err)
		}
		if len(errs) != len(tc.want) {
			t.Errorf("%s: violations %q, want %d like %q", tc.doc, errs, len(tc.want), tc.want)
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(errs[i], w) {
				t.Errorf("%s: violation %q, want it to contain %q", tc.doc, errs[i], w)
			}
		}
	}
}

// A keyword the validator does not implement is an error in the schema,
// never silently accepted.
func TestUnsupportedKeyword(t *testing.T) {
	if _, err := Validate([]byte(`{"type": "integer", "minimum": 3}`), []byte(`1`)); err == nil || !strings.Contains(err.Error(), `"minimum" not supported`) {
		t.Fatalf("err = %v, want minimum not supported", err)
	}
}
