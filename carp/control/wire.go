package control

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// A command runs once per status line, so what its single request costs
// is mostly what encoding/json builds on first use of a type (its
// reflection caches: for Request, the whole api.IfconfigRequest tree, nil
// or not). The client therefore writes the common requests and reads the
// common answer (Response.Text alone) itself, byte for byte what
// encoding/json writes and reads, and hands everything else to
// encoding/json.

// appendRequest appends req as writeMessage sends it: json.Marshal's
// bytes and a newline.
func appendRequest(b []byte, req Request) ([]byte, error) {
	if !plainRequest(req) {
		m, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("control: encode: %w", err)
		}
		return checkSize(append(append(b, m...), '\n'))
	}
	// The fields in Request's order, each as its tag says.
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(req.Version), 10)
	b = appendField(b, "op", req.Op)
	if req.ShowKeys {
		b = append(b, `,"show_keys":true`...)
	}
	if req.OID != "" {
		b = appendField(b, "oid", req.OID)
	}
	if req.Value != 0 {
		b = append(b, `,"value":`...)
		b = strconv.AppendInt(b, req.Value, 10)
	}
	if req.Iface != "" {
		b = appendField(b, "iface", req.Iface)
	}
	if req.NoIfaces {
		b = append(b, `,"no_ifaces":true`...)
	}
	if req.Detail {
		b = append(b, `,"detail":true`...)
	}
	if req.Text != "" {
		b = appendField(b, "text", req.Text)
	}
	if len(req.Args) > 0 {
		b = append(b, `,"args":[`...)
		for i, a := range req.Args {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(append(append(b, '"'), a...), '"')
		}
		b = append(b, ']')
	}
	return checkSize(append(b, "}\n"...))
}

// checkSize refuses a message writeMessage would refuse.
func checkSize(msg []byte) ([]byte, error) {
	if len(msg)-1 >= MaxMessage {
		return nil, fmt.Errorf("control: message of %d bytes exceeds %d", len(msg)-1, MaxMessage)
	}
	return msg, nil
}

// appendField appends `,"name":"value"` for a plain value.
func appendField(b []byte, name, value string) []byte {
	b = append(append(append(b, `,"`...), name...), `":"`...)
	return append(append(b, value...), '"')
}

// plainRequest reports whether appendRequest may write req itself: no
// ifconfig body and only strings that encoding/json copies unchanged.
func plainRequest(req Request) bool {
	if req.Ifconfig != nil || !plain(req.Op) || !plain(req.OID) || !plain(req.Iface) || !plain(req.Text) {
		return false
	}
	for _, a := range req.Args {
		if !plain(a) {
			return false
		}
	}
	return true
}

// plain reports whether json.Marshal writes s as it is between quotes:
// printable ASCII other than the quote, the backslash and the three
// characters it escapes for HTML.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// appendResponse appends resp as the server sends it: the answer with Text
// alone (the common one) written here, in one pass over the text, anything
// else by writeMessage's encoding/json. The text goes out raw but for what
// JSON must escape (quote, backslash, control characters): decodeResponse
// and encoding/json both read it.
func appendResponse(b []byte, resp Response) ([]byte, error) {
	rest := resp
	rest.Version, rest.Text = 0, nil
	if resp.Version == Version && resp.Text != nil && rest == (Response{}) {
		// Room for the escapes (a tab and a newline a line) up front.
		b = slices.Grow(b, len(textPrefix)+len(*resp.Text)*9/8+8)
		if msg, ok := appendTextOnly(b, *resp.Text); ok {
			return checkSize(msg)
		}
	}
	m, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("control: encode: %w", err)
	}
	return checkSize(append(append(b, m...), '\n'))
}

// appendTextOnly appends `{"v":2,"text":"..."}` and a newline for an
// ASCII text; ok is false for any other.
func appendTextOnly(b []byte, text string) ([]byte, bool) {
	const hex = "0123456789abcdef"
	b = append(b, textPrefix...)
	start := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= 0x20 && c < 0x80 && c != '"' && c != '\\' {
			continue
		}
		if c >= 0x80 {
			return nil, false
		}
		b = append(b, text[start:i]...)
		start = i + 1
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
	}
	b = append(b, text[start:]...)
	return append(b, "\"}\n"...), true
}

// textPrefix is how json.Marshal begins a Response with Text and nothing
// else but the version, which is how the server answers a Request.Text it
// rendered without an error or anything on stderr.
var textPrefix = `{"v":` + strconv.Itoa(Version) + `,"text":"`

// decodeResponse decodes one response line as json.Unmarshal does. The
// answer with Text alone is read here (one pass, no reflection), anything
// else by encoding/json.
func decodeResponse(line []byte, resp *Response) error {
	if text, ok := textOnly(line); ok {
		*resp = Response{Version: Version, Text: &text}
		return nil
	}
	if err := json.Unmarshal(line, resp); err != nil {
		return fmt.Errorf("control: decode: %w", err)
	}
	return nil
}

// textOnly returns the text of a line `{"v":2,"text":"..."}` (then a
// newline) whose string holds only ASCII, raw or in the escapes
// json.Marshal writes for it; ok is false for any other line, which
// encoding/json then reads.
func textOnly(line []byte) (string, bool) {
	const suffix = "\"}\n"
	n := len(line)
	if n < len(textPrefix)+len(suffix) || string(line[:len(textPrefix)]) != textPrefix || string(line[n-len(suffix):]) != suffix {
		return "", false
	}
	s := line[len(textPrefix) : n-len(suffix)]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		// A run of plain characters is copied at once.
		j := i
		for j < len(s) && s[j] >= 0x20 && s[j] < 0x80 && s[j] != '"' && s[j] != '\\' {
			j++
		}
		out = append(out, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		if s[i] != '\\' || i+1 >= len(s) {
			// Not one string of ASCII: encoding/json decides.
			return "", false
		}
		i++
		switch s[i] {
		case '"', '\\', '/':
			out = append(out, s[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 >= len(s) {
				return "", false
			}
			v, ok := hex4(s[i+1 : i+5])
			if !ok || v >= 0x80 {
				return "", false
			}
			out = append(out, byte(v))
			i += 4
		default:
			return "", false
		}
	}
	return string(out), true
}

// hex4 is the value of the four hex digits of a \u escape.
func hex4(h []byte) (rune, bool) {
	var v rune
	for _, c := range h {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | rune(c)
	}
	return v, true
}
