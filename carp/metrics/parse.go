package metrics

import (
	"fmt"
	"strconv"
	"strings"
)

// Sample is one line of metrics text: a series and its value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Parse reads the text format strictly, for tests and scripts: every line
// is "# HELP name text", "# TYPE name type" (once per name, before its
// samples) or `name{label="value",...} value`; anything else is an error
// naming its line.
func Parse(text string) ([]Sample, error) {
	var out []Sample
	typed := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		bad := func(why string) error { return fmt.Errorf("metrics: line %d %q: %s", i+1, line, why) }
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			kw, rest, _ := strings.Cut(rest, " ")
			name, arg, _ := strings.Cut(rest, " ")
			if !validName(name) {
				return nil, bad("bad metric name")
			}
			switch kw {
			case "HELP":
			case "TYPE":
				switch arg {
				case "counter", "gauge", "untyped", "histogram", "summary":
				default:
					return nil, bad("bad type")
				}
				if _, dup := typed[name]; dup {
					return nil, bad("second TYPE")
				}
				typed[name] = arg
			default:
				return nil, bad("comment neither HELP nor TYPE")
			}
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, bad(err.Error())
		}
		if _, ok := typed[s.Name]; !ok {
			return nil, bad("sample before its TYPE")
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	end := strings.IndexAny(line, "{ ")
	if end < 0 {
		return s, fmt.Errorf("no value")
	}
	s.Name, line = line[:end], line[end:]
	if !validName(s.Name) {
		return s, fmt.Errorf("bad metric name")
	}
	if strings.HasPrefix(line, "{") {
		line = line[1:]
		for !strings.HasPrefix(line, "}") {
			k, rest, ok := strings.Cut(line, `="`)
			if !ok || !validName(k) || strings.Contains(k, ":") {
				return s, fmt.Errorf("bad label")
			}
			var v strings.Builder
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						c = '\n'
					case '\\', '"':
						c = rest[j]
					default:
						return s, fmt.Errorf("bad escape in label %s", k)
					}
				}
				v.WriteByte(c)
			}
			if j == len(rest) {
				return s, fmt.Errorf("unterminated label %s", k)
			}
			if _, dup := s.Labels[k]; dup {
				return s, fmt.Errorf("label %s twice", k)
			}
			s.Labels[k] = v.String()
			line = rest[j+1:]
			if c, ok := strings.CutPrefix(line, ","); ok {
				line = c
			} else if !strings.HasPrefix(line, "}") {
				return s, fmt.Errorf("bad label separator")
			}
		}
		line = line[1:]
	}
	v, ok := strings.CutPrefix(line, " ")
	if !ok {
		return s, fmt.Errorf("no space before the value")
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return s, fmt.Errorf("bad value")
	}
	s.Value = f
	return s, nil
}

// validName reports whether n is a metric (or label) name:
// [a-zA-Z_:][a-zA-Z0-9_:]*.
func validName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Find returns the value of the sample named name whose labels include
// all of labels (pairs), and whether there is exactly one.
func Find(samples []Sample, name string, labels ...string) (float64, bool) {
	var val float64
	n := 0
	for _, s := range samples {
		if s.Name != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if s.Labels[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if match {
			val, n = s.Value, n+1
		}
	}
	return val, n == 1
}
