package control

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/api/apitest"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
)

// marshalled is a message as writeMessage sends it.
func marshalled(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeMessage(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestAppendRequestIsJSONMarshal(t *testing.T) {
	reqs := []Request{
		{},
		{Version: Version, Op: OpStatus},
		{Version: Version, Op: OpStatus, Iface: "em0", ShowKeys: true, Text: bsd.TextIfconfig, Args: []string{"-k", "em0"}},
		{Version: Version, Op: OpStatus, NoIfaces: true, Text: bsd.TextSysctl, Args: []string{"-n", "net.inet.carp.allow", "net.inet.carp"}},
		{Version: Version, Op: OpStatus, NoIfaces: true, Text: bsd.TextNetstat},
		{Version: Version, Op: OpStatus, Detail: true, Args: []string{}},
		{Version: Version, Op: OpSysctl, OID: "net.inet.carp.preempt", Value: -1},
		{Version: -3, Op: OpSysctl, OID: "net.inet.carp.demotion", Value: 1 << 40},
		// What encoding/json escapes, in every string field.
		{Version: Version, Op: "a\"b", Iface: "em0"},
		{Version: Version, Op: OpStatus, Iface: "em<0>"},
		{Version: Version, Op: OpStatus, OID: "a&b"},
		{Version: Version, Op: OpStatus, Text: "x\\y"},
		{Version: Version, Op: OpStatus, Args: []string{"ok", "tab\there"}},
		{Version: Version, Op: OpStatus, Args: []string{"caf\u00e9", "\xff", "\u2028", "\x7f"}},
		{Version: Version, Op: OpIfconfig, Ifconfig: &api.IfconfigRequest{Iface: "em0", Ops: []api.Op{{Kind: api.OpVHID, Int: 1},
			{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.1/32"), Alias: true}}}},
	}
	for _, req := range reqs {
		got, err := appendRequest([]byte("prefix"), req)
		if err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
		if want := append([]byte("prefix"), marshalled(t, req)...); !bytes.Equal(got, want) {
			t.Errorf("%+v:\n got %s\nwant %s", req, got, want)
		}
	}
	if !plainRequest(reqs[2]) || plainRequest(reqs[9]) || plainRequest(reqs[len(reqs)-1]) {
		t.Error("plainRequest does not tell the requests it writes itself")
	}
	long := Request{Op: OpStatus, Args: []string{strings.Repeat("x", MaxMessage)}}
	if _, err := appendRequest(nil, long); err == nil {
		t.Error("a request over MaxMessage was not refused")
	}
}

// decodeBoth decodes line with decodeResponse and with json.Unmarshal.
func decodeBoth(t *testing.T, line []byte) (fast, slow Response, fastErr, slowErr error) {
	fastErr = decodeResponse(line, &fast)
	slowErr = json.Unmarshal(line, &slow)
	return
}

func TestDecodeResponseIsJSONUnmarshal(t *testing.T) {
	var em0 bytes.Buffer
	if err := bsd.FormatStatus(&em0, bsd.ParsedIfconfig{ListAll: true, ShowKeys: true}, apitest.Status(255)); err != nil {
		t.Fatal(err)
	}
	texts := []string{"", "carp:\n\t0 packets received (IPv4)\n", em0.String(),
		`key "a\b" <&> /`, "\b\f\r\x01\x1f\x7f", "caf\u00e9", "\xff\xfe", "\u2028\u2029", "\U0001F600"}
	fast := 0
	for _, text := range texts {
		line := marshalled(t, Response{Version: Version, Text: &text})
		got, want, gerr, werr := decodeBoth(t, line)
		if gerr != nil || werr != nil || !reflect.DeepEqual(got, want) || (utf8.ValidString(text) && *got.Text != text) {
			t.Errorf("%q: %+v %v, json: %+v %v", text, got, gerr, want, werr)
		}
		if _, ok := textOnly(line); ok {
			fast++
		}
		// As the server writes it: read the same both ways.
		line, err := appendResponse(nil, Response{Version: Version, Text: &text})
		if err != nil {
			t.Fatal(err)
		}
		got, want, gerr, werr = decodeBoth(t, line)
		if gerr != nil || werr != nil || !reflect.DeepEqual(got, want) || (utf8.ValidString(text) && *got.Text != text) {
			t.Errorf("%q as the server writes it: %+v %v, json: %+v %v", text, got, gerr, want, werr)
		}
		if _, ok := textOnly(line); ok != (strings.IndexFunc(text, func(r rune) bool { return r >= 0x80 }) < 0) {
			t.Errorf("%q as the server writes it: read without encoding/json: %v", text, ok)
		}
	}
	if fast != 5 {
		t.Errorf("%d of the ASCII texts decoded without encoding/json, want 5", fast)
	}
	// Other answers go to encoding/json, which reads them as always.
	st := apitest.Status(3)
	text := "partial\n"
	others := []Response{
		{Version: Version, Status: &st},
		{Version: Version, Text: &text, Code: CodeRefused, Error: "x", Refusal: &api.Error{Reason: api.ReasonNoInterface, Name: "em9"}},
		{Version: Version, Text: &text, Stderr: "sysctl: unknown oid 'net.inet.carp.x'\n", Exit: 1},
		{Version: Version + 1, Text: &text},
		{Version: Version, Code: CodeFail, Error: "engine stopped"},
	}
	for _, resp := range others {
		line := marshalled(t, resp)
		if sent, err := appendResponse(nil, resp); err != nil || !bytes.Equal(sent, line) {
			t.Errorf("the server sends %s as %s (%v)", line, sent, err)
		}
		got, want, gerr, werr := decodeBoth(t, line)
		if gerr != nil || werr != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v %v, json: %+v %v", line, got, gerr, want, werr)
		}
	}
	// Lines encoding/json would refuse are refused.
	for _, line := range []string{`{"v":2,"text":"a"b"}` + "\n", `{"v":2,"text":"\q"}` + "\n", `{"v":2,"text":"\u00"}` + "\n", "{\"v\":2,\"text\":\"\x01\"}\n"} {
		_, _, gerr, werr := decodeBoth(t, []byte(line))
		if gerr == nil || werr == nil {
			t.Errorf("%q: decoded (%v), json: %v", line, gerr, werr)
		}
	}
}

// FuzzDecodeResponse: whatever line decodeResponse reads, it reads as
// json.Unmarshal does.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{"carp0: flags=8802<UP> mtu 1500\n", "a\"b\\c\td", "\u00e9\x00"} {
		f.Add(string(marshalled(f, Response{Version: Version, Text: &s})))
	}
	f.Add(`{"v":2,"text":"\u0041\/\u007F"}` + "\n")
	f.Fuzz(func(t *testing.T, line string) {
		got, want, gerr, werr := decodeBoth(t, []byte(line))
		if (gerr == nil) != (werr == nil) || (gerr == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("%q: %+v %v, json: %+v %v", line, got, gerr, want, werr)
		}
	})
}

// FuzzAppendRequest: appendRequest writes what json.Marshal writes.
func FuzzAppendRequest(f *testing.F) {
	f.Add("status", "em0", "ifconfig", "-k", true, int64(0))
	f.Add("sysctl", "", "", "net.inet.carp.preempt", false, int64(-7))
	f.Add("status", "<", "\"", "\xff", false, int64(1))
	f.Fuzz(func(t *testing.T, op, iface, text, arg string, keys bool, value int64) {
		req := Request{Version: Version, Op: op, Iface: iface, Text: text, OID: arg, Value: value, ShowKeys: keys, NoIfaces: !keys, Args: []string{arg, iface}}
		got, err := appendRequest(nil, req)
		if err != nil {
			t.Fatal(err)
		}
		if want := marshalled(t, req); !bytes.Equal(got, want) {
			t.Errorf("got %s\nwant %s", got, want)
		}
	})
}
