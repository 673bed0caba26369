package devd

import "strings"

// NotifyEvent returns the variables devd's process_event sets for a notify
// line as the kernel writes it ("!system=CARP subsystem=1@em0 type=MASTER",
// without the newline): "*" is the whole line, "_" the line without its
// first character, and each name=value pair follows; a value may be
// double-quoted (`name="a b"`); in any value \" stands for ". Parsing stops at the
// first word that is not a pair, as devd's chop_var does. The caller adds
// "timestamp" if it wants devd's. It returns nil if line does not start
// with "!".
func NotifyEvent(line string) Event {
	if !strings.HasPrefix(line, "!") {
		return nil
	}
	ev := Event{"*": line, "_": line[1:]}
	s := line[1:]
	for s != "" {
		i := 0
		for i < len(s) && (isAlpha(s[i]) || isDigit(s[i]) || s[i] == '_' || s[i] == '-') {
			i++
		}
		if i == len(s) || s[i] != '=' {
			break
		}
		name := s[:i]
		s = s[i+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			j := 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) && s[j+1] == '"' {
					j++
				}
				j++
			}
			if j >= len(s) {
				break
			}
			val = s[1:j]
			s = s[j+1:]
		} else {
			j := strings.IndexAny(s, " \t\n\v\f\r")
			if j < 0 {
				j = len(s)
			}
			val = s[:j]
			if j < len(s) {
				j++
			}
			s = s[j:]
		}
		ev[name] = strings.ReplaceAll(val, `\"`, `"`) // devd's fix_value
		s = strings.TrimLeft(s, " \t\n\v\f\r")
	}
	return ev
}
