package devd

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
)

// Kind is the kind of a devd.conf statement.
type Kind int

// The statement kinds of devd.conf(5). carpd acts on Notify only; the
// others are parsed and kept so that a FreeBSD devd.conf loads unchanged.
const (
	Attach Kind = iota + 1
	Detach
	Nomatch
	Notify
)

// String returns the keyword of the kind.
func (k Kind) String() string {
	switch k {
	case Attach:
		return "attach"
	case Detach:
		return "detach"
	case Nomatch:
		return "nomatch"
	case Notify:
		return "notify"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ClauseKind is the kind of one entry inside a statement block.
type ClauseKind int

// The entries of a statement block.
const (
	// MatchClause is `match "var" "regex";` or one of its short forms
	// `device-name "re";`, `class "re";`, `subdevice "re";`.
	MatchClause ClauseKind = iota + 1
	// MediaClause is `media-type "type";`.
	MediaClause
	// ActionClause is `action "command";`.
	ActionClause
)

// Clause is one entry of a statement block, in the order written.
type Clause struct {
	Kind ClauseKind
	Line int
	// Var is the variable a match tests ("system", "device-name", ...);
	// "media-type" for a MediaClause; empty for an action.
	Var string
	// Value is the string as written (after the lexer's backslash-newline
	// processing): the regular expression, the media type or the command.
	Value string
	// Pattern is, for a match, the POSIX extended regular expression devd
	// compiles: "^" + Value with variables expanded and a leading "!"
	// removed + "$".
	Pattern string
	// Invert is true when Value starts with "!": the match succeeds when
	// the regular expression does not match.
	Invert bool

	re *regexp.Regexp // nil if Pattern could not be translated: never matches
}

// Statement is one attach, detach, nomatch or notify block.
type Statement struct {
	Kind     Kind
	Priority int
	File     string
	Line     int // line of the keyword
	Clauses  []Clause
}

// Config is a parsed devd configuration: the main file and the files of the
// directories its options name. It is immutable after Parse or Load, and
// safe for concurrent use by Match.
type Config struct {
	// Files are the files parsed, in the order parsed.
	Files []string
	// Directories are the `directory` options, in the order given.
	Directories []string
	// PidFile is the last `pid-file` option (unused by carpd).
	PidFile string
	// Vars are the `set` options: devd's global variables.
	Vars map[string]string
	// Statements are the non-empty statements in definition order
	// (devd drops a statement with an empty block at parse time).
	Statements []*Statement
	// Warnings name clauses whose regular expression could not be used;
	// such a match never succeeds, as with devd when regcomp fails.
	Warnings []string
	// Media reports the media type of an interface for media-type
	// clauses: "Ethernet", "802.11", "ATM" or anything else, and ok
	// false when the interface has no media (devd's SIOCGIFMEDIA
	// failing). Nil means no interface has media.
	Media func(ifname string) (media string, ok bool)

	sorted map[Kind][]*Statement
}

// Parse parses one devd.conf file given as bytes. It does not read the
// directories named in its options; Load does. name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	c := newConfig()
	if err := c.parseFile(name, data); err != nil {
		return nil, err
	}
	c.finish()
	return c, nil
}

func newConfig() *Config {
	return &Config{Vars: map[string]string{}}
}

type parser struct {
	c   *Config
	lex lexer
	tok token
}

func (c *Config) parseFile(name string, data []byte) error {
	c.Files = append(c.Files, name)
	p := &parser{c: c, lex: lexer{file: name, src: data, line: 1}}
	if err := p.advance(); err != nil {
		return err
	}
	for p.tok.kind != tEOF {
		if err := p.config(); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) fail() error {
	if p.tok.kind == tEOF {
		return &SyntaxError{File: p.lex.file, Line: p.tok.line, Msg: "syntax error at end of file"}
	}
	return &SyntaxError{File: p.lex.file, Line: p.tok.line, Near: p.tok.text, Msg: "syntax error"}
}

// expect consumes a token of kind k and returns it.
func (p *parser) expect(k tokKind) (token, error) {
	if p.tok.kind != k {
		return token{}, p.fail()
	}
	t := p.tok
	return t, p.advance()
}

func (p *parser) config() error {
	switch p.tok.kind {
	case tOptions:
		return p.options()
	case tAttach:
		return p.statement(Attach)
	case tDetach:
		return p.statement(Detach)
	case tNomatch:
		return p.statement(Nomatch)
	case tNotify:
		return p.statement(Notify)
	}
	return p.fail()
}

func (p *parser) options() error {
	if err := p.advance(); err != nil {
		return err
	}
	if _, err := p.expect(tBegin); err != nil {
		return err
	}
	n := 0
	for p.tok.kind != tEnd || n == 0 {
		switch p.tok.kind {
		case tDirectory, tPidFile:
			kw := p.tok.kind
			if err := p.advance(); err != nil {
				return err
			}
			s, err := p.expect(tString)
			if err != nil {
				return err
			}
			if _, err := p.expect(tSemi); err != nil {
				return err
			}
			if kw == tDirectory {
				p.c.Directories = append(p.c.Directories, s.str)
			} else {
				p.c.PidFile = s.str
			}
		case tSet:
			if err := p.advance(); err != nil {
				return err
			}
			id, err := p.expect(tID)
			if err != nil {
				return err
			}
			s, err := p.expect(tString)
			if err != nil {
				return err
			}
			if _, err := p.expect(tSemi); err != nil {
				return err
			}
			p.c.Vars[id.str] = s.str
		default:
			return p.fail()
		}
		n++
	}
	if err := p.advance(); err != nil { // }
		return err
	}
	_, err := p.expect(tSemi)
	return err
}

func (p *parser) statement(kind Kind) error {
	st := &Statement{Kind: kind, File: p.lex.file, Line: p.tok.line}
	if err := p.advance(); err != nil {
		return err
	}
	num, err := p.expect(tNumber)
	if err != nil {
		return err
	}
	st.Priority = num.num
	if _, err := p.expect(tBegin); err != nil {
		return err
	}
	for p.tok.kind != tEnd {
		cl := Clause{Line: p.tok.line}
		switch p.tok.kind {
		case tMatch:
			if err := p.advance(); err != nil {
				return err
			}
			v, err := p.expect(tString)
			if err != nil {
				return err
			}
			cl.Kind, cl.Var = MatchClause, v.str
		case tDeviceName, tClass, tSubdevice:
			cl.Kind, cl.Var = MatchClause, p.tok.text
			if err := p.advance(); err != nil {
				return err
			}
		case tMediaType:
			cl.Kind, cl.Var = MediaClause, "media-type"
			if err := p.advance(); err != nil {
				return err
			}
		case tAction:
			cl.Kind = ActionClause
			if err := p.advance(); err != nil {
				return err
			}
		default:
			return p.fail()
		}
		s, err := p.expect(tString)
		if err != nil {
			return err
		}
		if _, err := p.expect(tSemi); err != nil {
			return err
		}
		cl.Value = s.str
		if cl.Kind == MatchClause {
			p.c.compileMatch(&cl, st.File)
		}
		st.Clauses = append(st.Clauses, cl)
	}
	if err := p.advance(); err != nil { // }
		return err
	}
	if _, err := p.expect(tSemi); err != nil {
		return err
	}
	if len(st.Clauses) > 0 {
		p.c.Statements = append(p.c.Statements, st)
	}
	return nil
}

// compileMatch builds the anchored pattern of a match clause the way devd's
// match constructor does, at parse time, with the global variables set so
// far, and compiles it case-insensitively (devd uses REG_ICASE).
func (c *Config) compileMatch(cl *Clause, file string) {
	re := cl.Value
	if len(re) > 0 && re[0] == '!' {
		cl.Invert = true
		re = re[1:]
	}
	cl.Pattern = "^" + expand(re, c.lookup(nil), false) + "$"
	goPat, err := translateERE(cl.Pattern)
	if err == nil {
		cl.re, err = regexp.Compile("(?i)" + goPat)
	}
	if err != nil {
		c.Warnings = append(c.Warnings, fmt.Sprintf("devd: %s:%d: match %q %q: %v (never matches)", file, cl.Line, cl.Var, cl.Value, err))
		cl.re = nil
	}
}

// finish orders the statements of each kind as devd does: a stable sort by
// decreasing priority, so equal priorities keep definition order.
func (c *Config) finish() {
	c.sorted = map[Kind][]*Statement{}
	for _, st := range c.Statements {
		c.sorted[st.Kind] = append(c.sorted[st.Kind], st)
	}
	for _, l := range c.sorted {
		stableSortByPriority(l)
	}
}

func stableSortByPriority(l []*Statement) {
	slices.SortStableFunc(l, func(a, b *Statement) int { return cmp.Compare(b.Priority, a.Priority) })
}
