package devd

import (
	"errors"
	"strings"
)

// Event is one devd event as variables: for a notify event the key=value
// pairs of its line (system, subsystem, type, and others such as notify,
// cdev, linkstate...), plus whatever the caller adds (devd itself sets "*"
// to the whole line, "_" to the line without its first character, and
// "timestamp"). Event variables hide `set` variables of the same name.
type Event map[string]string

// Action is a command to run for an event.
type Action struct {
	// Command is the action string with variables expanded, ready for
	// /bin/sh -c. Expanded values are single-quoted for the shell.
	Command string
	// Template is the action string as written.
	Template string
	// File, Line and Priority locate the statement it comes from.
	File     string
	Line     int
	Priority int
}

// Match returns the actions to run for a notify event: those of every
// notify statement whose match and media-type clauses all succeed, in
// decreasing priority and then definition order, each statement's actions
// in the order written; nil when none matches. bsdcarp runs every
// matching statement; devd itself stops at the first (find_and_execute
// breaks after it: see First), so a lower-priority rule that devd would
// shadow runs here too.
func (c *Config) Match(ev Event) []Action {
	return c.MatchKind(Notify, ev)
}

// MatchKind is Match for statements of the given kind.
func (c *Config) MatchKind(kind Kind, ev Event) []Action {
	look := c.lookup(ev)
	var out []Action
	for _, st := range c.sorted[kind] {
		if !c.matches(st, ev, look) {
			continue
		}
		for _, cl := range st.Clauses {
			if cl.Kind != ActionClause {
				continue
			}
			out = append(out, Action{
				Command:  expand(cl.Value, look, true),
				Template: cl.Value,
				File:     st.File,
				Line:     cl.Line,
				Priority: st.Priority,
			})
		}
	}
	return out
}

// First returns the statement of the given kind devd would run for ev, or
// nil.
func (c *Config) First(kind Kind, ev Event) *Statement {
	look := c.lookup(ev)
	for _, st := range c.sorted[kind] {
		if c.matches(st, ev, look) {
			return st
		}
	}
	return nil
}

func (c *Config) matches(st *Statement, ev Event, look func(string) string) bool {
	for i := range st.Clauses {
		cl := &st.Clauses[i]
		switch cl.Kind {
		case MatchClause:
			if cl.re == nil {
				return false
			}
			if cl.re.MatchString(look(cl.Var)) == cl.Invert {
				return false
			}
		case MediaClause:
			if !c.mediaMatches(cl.Value, look) {
				return false
			}
		}
	}
	return true
}

// mediaNames are the media types devd's media clause knows (compared
// without case); any other name behaves as "unknown".
var mediaNames = []string{"Ethernet", "802.11", "ATM"}

func (c *Config) mediaMatches(want string, look func(string) string) bool {
	known := ""
	for _, n := range mediaNames {
		if strings.EqualFold(n, want) {
			known = n
		}
	}
	ifname := look("device-name")
	if ifname == "" {
		ifname = look("subsystem")
	}
	media, ok := "", false
	if c.Media != nil {
		media, ok = c.Media(ifname)
	}
	if ok {
		return known != "" && strings.EqualFold(media, known)
	}
	return known == ""
}

// lookup returns devd's get_variable: the event's variables first, then the
// global `set` variables, else "".
func (c *Config) lookup(ev Event) func(string) string {
	return func(name string) string {
		if v, ok := ev[name]; ok {
			return v
		}
		return c.Vars[name]
	}
}

// Expand expands variables in s as devd does for an action string, with
// the event's variables and the global `set` variables: "$$" gives "$";
// "$(" copies text unchanged until the parentheses balance, devd counting
// the first "(" twice ("$(cmd) $x" is copied whole, "$(cmd)) $x" expands
// $x); "$" before a character other than a letter, "_", "-" or "*" stays
// (so "${x}" reaches the shell as written); a name of letters, digits, "_"
// and "-" is replaced by its value quoted as one shell word (an empty quoted word if unset).
func (c *Config) Expand(s string, ev Event) string {
	return expand(s, c.lookup(ev), true)
}

// expand implements devd's expand_string: "$$" is "$"; "$(" copies the
// text unchanged until the parentheses balance, and devd counts the "("
// after the "$" twice, so "$(cmd) $x" copies everything to the end of the
// string and "$(cmd)) $x" stops after "))";
// "$" followed by a character that is not a letter, "_", "-" or "*" is
// kept as is (so "${var}" is not expanded by devd and reaches the shell
// as written); otherwise the longest name of letters, digits, "_" and "-"
// (whose first character may also be "*") is replaced by its value, ""
// when unset. For actions (shell true) the value is quoted as one shell
// word; devd writes $'...', which dash lacks, so this uses POSIX '...'
// quoting with the same result for the command.
func expand(s string, look func(string) string, shell bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		i++
		if i >= len(s) {
			b.WriteByte('$')
			break
		}
		c := s[i]
		switch {
		case c == '$':
			b.WriteByte('$')
			i++
		case c == '(':
			b.WriteByte('$')
			depth := 1
			for depth > 0 && i < len(s) {
				switch s[i] {
				case ')':
					depth--
				case '(':
					depth++
				}
				b.WriteByte(s[i])
				i++
			}
		case !isAlpha(c) && c != '_' && c != '-' && c != '*':
			b.WriteByte('$')
			b.WriteByte(c)
			i++
		default:
			j := i + 1
			for j < len(s) && (isAlpha(s[j]) || isDigit(s[j]) || s[j] == '_' || s[j] == '-') {
				j++
			}
			v := look(s[i:j])
			if shell {
				v = shellQuote(v)
			}
			b.WriteString(v)
			i = j
		}
	}
	return b.String()
}

// shellQuote makes v one POSIX shell word.
func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// translateERE rewrites a POSIX extended regular expression into Go's RE2
// syntax where the two differ in ways devd.conf files use: inside a
// bracket expression a backslash is an ordinary character in POSIX, and a
// "]" right after "[" or "[^" is a literal. Equivalence classes [= =] and
// collating symbols [. .] are refused; back-references and \< \> (not
// POSIX, and unknown to RE2) fail in regexp.Compile. Matching is a yes/no
// question (devd uses REG_NOSUB), so leftmost-longest versus leftmost-first
// does not matter.
func translateERE(p string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) {
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
			continue
		}
		if c != '[' {
			b.WriteByte(c)
			continue
		}
		// Bracket expression.
		b.WriteByte('[')
		i++
		if i < len(p) && p[i] == '^' {
			b.WriteByte('^')
			i++
		}
		first := true
		for ; i < len(p); i++ {
			c = p[i]
			if c == ']' && !first {
				break
			}
			first = false
			switch {
			case c == '[' && i+1 < len(p) && p[i+1] == ':':
				end := strings.Index(p[i+2:], ":]")
				if end < 0 {
					return "", errors.New("unterminated character class")
				}
				b.WriteString(p[i : i+2+end+2])
				i += 2 + end + 1
			case c == '[' && i+1 < len(p) && (p[i+1] == '=' || p[i+1] == '.'):
				return "", errors.New("equivalence classes and collating symbols are not supported")
			case c == '\\' || c == '[' || c == ']':
				b.WriteByte('\\')
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
		}
		if i >= len(p) {
			return "", errors.New("unterminated bracket expression")
		}
		b.WriteByte(']')
	}
	return b.String(), nil
}
