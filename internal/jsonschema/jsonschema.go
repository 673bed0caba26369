// Package jsonschema validates a JSON document against the small subset
// of JSON Schema (draft 2020-12) that docs/status.schema.json uses: type,
// required, properties, additionalProperties (false or a schema), items,
// enum and format "date-time" (RFC 3339), with $schema, $id, title and
// description as annotations. Any other keyword is an error, so a schema
// never says more than the tests check. It exists for the tests; nothing
// in carpd links it.
package jsonschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// Validate checks doc against schema (both JSON texts) and returns every
// violation found, each naming its JSON pointer, sorted; nil when doc is
// valid.
func Validate(schema, doc []byte) ([]string, error) {
	var s, d any
	if err := decode(schema, &s); err != nil {
		return nil, fmt.Errorf("jsonschema: schema: %w", err)
	}
	if err := decode(doc, &d); err != nil {
		return nil, fmt.Errorf("jsonschema: document: %w", err)
	}
	var v validator
	if err := v.check(s, d, ""); err != nil {
		return nil, err
	}
	sort.Strings(v.errs)
	return v.errs, nil
}

// decode keeps numbers as json.Number, so integers are told from floats.
func decode(b []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

type validator struct{ errs []string }

func (v *validator) fail(ptr, format string, args ...any) {
	if ptr == "" {
		ptr = "/"
	}
	v.errs = append(v.errs, ptr+": "+fmt.Sprintf(format, args...))
}

var annotations = map[string]bool{"$schema": true, "$id": true, "title": true, "description": true}

// check validates d at ptr against schema s; an error means the schema
// itself is wrong (not the document).
func (v *validator) check(s, d any, ptr string) error {
	switch s := s.(type) {
	case bool:
		if !s {
			v.fail(ptr, "not allowed")
		}
		return nil
	case map[string]any:
		keys := make([]string, 0, len(s))
		for k := range s {
			keys = append(keys, k)
		}
		sort.Strings(keys) // "type" is checked before the keywords that assume it
		if t, ok := s["type"]; ok {
			ts, ok := t.(string)
			if !ok {
				return fmt.Errorf("jsonschema: %s: type must be a string", ptr)
			}
			if !hasType(ts, d) {
				v.fail(ptr, "%s is not of type %s", describe(d), ts)
				return nil
			}
		}
		for _, k := range keys {
			if err := v.keyword(k, s, d, ptr); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("jsonschema: %s: schema is neither an object nor a boolean", ptr)
}

func (v *validator) keyword(k string, s map[string]any, d any, ptr string) error {
	obj, isObj := d.(map[string]any)
	switch k {
	case "type":
	case "required":
		req, ok := s[k].([]any)
		if !ok {
			return fmt.Errorf("jsonschema: %s: required must be an array", ptr)
		}
		for _, r := range req {
			name, _ := r.(string)
			if _, present := obj[name]; isObj && !present {
				v.fail(ptr, "required member %q missing", name)
			}
		}
	case "properties":
		props, ok := s[k].(map[string]any)
		if !ok {
			return fmt.Errorf("jsonschema: %s: properties must be an object", ptr)
		}
		for name, sub := range props {
			if val, present := obj[name]; isObj && present {
				if err := v.check(sub, val, ptr+"/"+name); err != nil {
					return err
				}
			}
		}
	case "additionalProperties":
		props, _ := s["properties"].(map[string]any)
		for name, val := range obj {
			if _, declared := props[name]; !declared {
				if b, ok := s[k].(bool); ok && !b {
					v.fail(ptr, "member %q is not allowed", name)
				} else if err := v.check(s[k], val, ptr+"/"+name); err != nil {
					return err
				}
			}
		}
	case "items":
		arr, ok := d.([]any)
		if !ok {
			return nil
		}
		for i, val := range arr {
			if err := v.check(s[k], val, fmt.Sprintf("%s/%d", ptr, i)); err != nil {
				return err
			}
		}
	case "enum":
		vals, ok := s[k].([]any)
		if !ok {
			return fmt.Errorf("jsonschema: %s: enum must be an array", ptr)
		}
		if !slices.ContainsFunc(vals, func(e any) bool { return equal(e, d) }) {
			v.fail(ptr, "%s is not one of %v", describe(d), vals)
		}
	case "format":
		f, _ := s[k].(string)
		if f != "date-time" {
			return fmt.Errorf("jsonschema: %s: format %q not supported", ptr, f)
		}
		if str, ok := d.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				v.fail(ptr, "%q is not an RFC 3339 date-time", str)
			}
		}
	default:
		if !annotations[k] {
			return fmt.Errorf("jsonschema: %s: keyword %q not supported", ptr, k)
		}
	}
	return nil
}

// hasType reports whether d is a JSON value of type t.
func hasType(t string, d any) bool {
	switch t {
	case "object":
		_, ok := d.(map[string]any)
		return ok
	case "array":
		_, ok := d.([]any)
		return ok
	case "string":
		_, ok := d.(string)
		return ok
	case "boolean":
		_, ok := d.(bool)
		return ok
	case "null":
		return d == nil
	case "number":
		_, ok := d.(json.Number)
		return ok
	case "integer":
		n, ok := d.(json.Number)
		if !ok {
			return false
		}
		if _, err := n.Int64(); err == nil {
			return true
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	}
	return false
}

// equal compares two decoded JSON values (numbers by value).
func equal(a, b any) bool {
	an, aok := a.(json.Number)
	bn, bok := b.(json.Number)
	if aok && bok {
		af, _ := an.Float64()
		bf, _ := bn.Float64()
		return af == bf
	}
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return bytes.Equal(ab, bb)
}

// describe names a value in an error.
func describe(d any) string {
	b, _ := json.Marshal(d)
	if len(b) > 60 {
		b = append(b[:57], "..."...)
	}
	return string(b)
}
