package devd

import (
	"fmt"
	"strconv"
)

// tokKind is the kind of a lexical token of devd.conf(5).
type tokKind int

const (
	tEOF tokKind = iota
	tSemi
	tBegin
	tEnd
	tNumber
	tString
	tID
	// Keywords, as sbin/devd/token.l lists them.
	tOptions
	tSet
	tDirectory
	tPidFile
	tAttach
	tDetach
	tDeviceName
	tMediaType
	tClass
	tSubdevice
	tAction
	tMatch
	tNomatch
	tNotify
)

var keywords = map[string]tokKind{
	"options":     tOptions,
	"set":         tSet,
	"directory":   tDirectory,
	"pid-file":    tPidFile,
	"attach":      tAttach,
	"detach":      tDetach,
	"device-name": tDeviceName,
	"media-type":  tMediaType,
	"class":       tClass,
	"subdevice":   tSubdevice,
	"action":      tAction,
	"match":       tMatch,
	"nomatch":     tNomatch,
	"notify":      tNotify,
}

// token is one lexical token: its kind, its text as written (for error
// messages), its value (string contents after devd's processing, or the
// number) and the line it starts on.
type token struct {
	kind tokKind
	text string
	str  string
	num  int
	line int
}

// lexer splits devd.conf text into tokens the way devd's flex scanner does.
type lexer struct {
	file string
	src  []byte
	pos  int
	line int
}

func isSpaceC(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// next returns the next token or a *SyntaxError.
func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			// token.l only names blank and tab; other control spaces
			// match no rule and flex's default rule skips them.
			l.pos++
		case c == '#':
			l.skipLine()
		case c == '/' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '/':
			l.skipLine()
		case c == '/' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '*':
			start := l.line
			end := -1
			for i := l.pos + 2; i+1 < len(l.src); i++ {
				if l.src[i] == '*' && l.src[i+1] == '/' {
					end = i + 2
					break
				}
			}
			if end < 0 {
				return token{}, &SyntaxError{File: l.file, Line: start, Msg: "unterminated comment"}
			}
			for _, b := range l.src[l.pos:end] {
				if b == '\n' {
					l.line++
				}
			}
			l.pos = end
		default:
			return l.token()
		}
	}
	return token{kind: tEOF, line: l.line}, nil
}

func (l *lexer) skipLine() {
	for l.pos < len(l.src) && l.src[l.pos] != '\n' {
		l.pos++
	}
}

func (l *lexer) token() (token, error) {
	c := l.src[l.pos]
	start := l.pos
	line := l.line
	switch {
	case c == ';':
		l.pos++
		return token{kind: tSemi, text: ";", line: line}, nil
	case c == '{':
		l.pos++
		return token{kind: tBegin, text: "{", line: line}, nil
	case c == '}':
		l.pos++
		return token{kind: tEnd, text: "}", line: line}, nil
	case isDigit(c):
		for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.pos++
		}
		text := string(l.src[start:l.pos])
		n, err := strconv.ParseInt(text, 10, 32)
		if err != nil {
			return token{}, &SyntaxError{File: l.file, Line: line, Near: text, Msg: "number out of range"}
		}
		return token{kind: tNumber, text: text, num: int(n), line: line}, nil
	case c == '"':
		end := -1
		for i := l.pos + 1; i < len(l.src); i++ {
			if l.src[i] == '"' {
				end = i
				break
			}
		}
		if end < 0 {
			return token{}, &SyntaxError{File: l.file, Line: line, Msg: "unterminated string"}
		}
		if end == l.pos+1 {
			// token.l's string rule needs at least one character.
			l.pos = end + 1
			return token{}, &SyntaxError{File: l.file, Line: line, Near: `""`, Msg: "syntax error"}
		}
		raw := l.src[l.pos : end+1]
		for _, b := range raw {
			if b == '\n' {
				l.line++
			}
		}
		l.pos = end + 1
		return token{kind: tString, text: string(raw), str: unquote(raw), line: line}, nil
	case isAlpha(c):
		for l.pos < len(l.src) {
			b := l.src[l.pos]
			if !isAlpha(b) && !isDigit(b) && b != '_' && b != '-' {
				break
			}
			l.pos++
		}
		text := string(l.src[start:l.pos])
		if k, ok := keywords[text]; ok {
			return token{kind: k, text: text, line: line}, nil
		}
		return token{kind: tID, text: text, str: text, line: line}, nil
	}
	l.pos++
	return token{}, &SyntaxError{File: l.file, Line: line, Near: string(rune(c)), Msg: "syntax error"}
}

// unquote turns a quoted string token (quotes included) into its value as
// token.l does: the only escape is a backslash followed by a newline, which
// drops the backslash, the newline and the white space after it, and then
// copies the next character whatever it is (devd's loop copies the closing
// quote when the continuation runs up to it). Every other backslash stays.
func unquote(raw []byte) string {
	n := len(raw) - 2 // content length, raw[1..n]
	out := make([]byte, 0, n)
	for i := 1; i <= n; i++ {
		if raw[i] == '\\' && raw[i+1] == '\n' {
			i += 2
			for i < len(raw) && isSpaceC(raw[i]) {
				i++
			}
		}
		if i >= len(raw) {
			break
		}
		out = append(out, raw[i])
	}
	return string(out)
}

// SyntaxError is an error in a devd.conf file, naming the file and line.
type SyntaxError struct {
	File string // file name as given to Parse or Load
	Line int    // 1-based line number
	Near string // offending token text; empty at end of file or when Msg says it all
	Msg  string // "syntax error", "unterminated string", ...
}

// Error formats the error as `devd: FILE:LINE: MSG near "TOKEN"`.
func (e *SyntaxError) Error() string {
	if e.Near != "" {
		return fmt.Sprintf("devd: %s:%d: %s near %q", e.File, e.Line, e.Msg, e.Near)
	}
	return fmt.Sprintf("devd: %s:%d: %s", e.File, e.Line, e.Msg)
}
