package bsd

import (
	"errors"
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// splitFuzz turns a fuzz string into argv words ('\x00' separates words so
// empty words and words with spaces are reachable).
func splitFuzz(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

func FuzzParseIfconfig(f *testing.F) {
	for _, s := range []string{
		"carp0 vhid 1 pass lanpasswd carpdev em0 advskew 100 10.0.0.1 255.255.255.0",
		"carp0 create", "carp0 destroy", "carp0 state BACKUP", "carp0 down",
		"em0 vhid 1 advskew 100 pass testpass alias 192.168.1.50/32",
		"em0 inet6 vhid 3 pass testpass 2001:db8::50/64 alias",
		"carp0 10.0.0.1 netmask 0xffffff00 broadcast 10.0.0.255",
		"carp0 inet 10.0.0.2 -alias", "-a", "-l", "-g carp", "-k carp0",
		"carp0 10.0.0.1/33", "em0 advskew 1", "carp0 vhid", "carp0 inet6 ::1 prefixlen 200",
		"em0 inet 192.168.1.3 netmask 255.255.255.0", "em0 192.168.1.3/24 alias", "em0 mtu 9000",
		"em0 mtu -99999999999999999999", "em0 inet6 fe80::1 prefixlen 64 delete", "em0 media autoselect",
	} {
		f.Add(strings.ReplaceAll(s, " ", "\x00"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := splitFuzz(s)
		p, err := ParseIfconfig(args)
		if err != nil {
			var ae *api.Error
			var ce *CommandError
			var ue *UsageError
			if !errors.As(err, &ae) && !errors.As(err, &ce) && !errors.As(err, &ue) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if p.Request != nil {
				t.Fatalf("error with a request")
			}
			if ce != nil && (ce.Msg == "" || strings.HasPrefix(ce.Msg, "ifconfig: ")) {
				t.Fatalf("bad message %q", ce.Msg)
			}
			return
		}
		modes := 0
		for _, b := range []bool{p.ListAll, p.ListNames, p.Group != "", p.Iface != ""} {
			if b {
				modes++
			}
		}
		if modes != 1 {
			t.Fatalf("%d modes in %+v", modes, p)
		}
		if p.Request == nil {
			return
		}
		if p.Request.Iface != p.Iface || p.Iface == "" {
			t.Fatalf("iface mismatch %+v", p)
		}
		clone := isCarpClone(p.Iface)
		addrOps := 0
		for i, op := range p.Request.Ops {
			switch op.Kind {
			case api.OpCreate:
				if i != 0 {
					t.Fatalf("create at %d", i)
				}
			case api.OpVHID:
				if op.Int <= 0 || (!clone && op.Int > 255) {
					t.Fatalf("vhid %d passed", op.Int)
				}
			case api.OpState:
				if op.Str != "init" && op.Str != "backup" && op.Str != "master" {
					t.Fatalf("state %q", op.Str)
				}
			case api.OpCarpdev:
				if !clone {
					t.Fatalf("carpdev on %s", p.Iface)
				}
			case api.OpAddr:
				addrOps++
				if !op.Prefix.IsValid() || i != len(p.Request.Ops)-1 {
					t.Fatalf("addr op %+v at %d", op, i)
				}
			case api.OpDelAddr:
				addrOps++
				if i != len(p.Request.Ops)-1 {
					t.Fatalf("-alias op at %d", i)
				}
			case api.OpMTU:
				if clone {
					t.Fatalf("mtu on %s", p.Iface)
				}
			case api.OpPass, api.OpAdvBase, api.OpAdvSkew, api.OpDestroy, api.OpUp, api.OpDown:
			default:
				t.Fatalf("unknown op %q", op.Kind)
			}
		}
		if addrOps > 1 {
			t.Fatalf("%d address ops", addrOps)
		}
		// Parsing is deterministic.
		p2, err2 := ParseIfconfig(args)
		if err2 != nil || opsString(p2.Request.Ops) != opsString(p.Request.Ops) {
			t.Fatalf("not deterministic")
		}
	})
}

func FuzzParseSysctl(f *testing.F) {
	for _, s := range []string{
		"net.inet.carp", "-a", "-n net.inet.carp.preempt", "net.inet.carp.preempt=1",
		"-e net.inet.carp.log:2", "-f /etc/sysctl.conf", "-d net", "-N -n x", "-q net.inet.carp.foo",
		"net.inet.carp.dscp=\"0x10\"", "net.inet.carp.preempt=", "-i a b=c",
	} {
		f.Add(strings.ReplaceAll(s, " ", "\x00"), true)
	}
	f.Fuzz(func(t *testing.T, s string, root bool) {
		args := splitFuzz(s)
		cmd, err := ParseSysctl(args)
		if err != nil {
			var ae *api.Error
			var ce *CommandError
			var ue *UsageError
			if !errors.As(err, &ae) && !errors.As(err, &ce) && !errors.As(err, &ue) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if cmd.Opts.NamesOnly && cmd.Opts.ValuesOnly {
			t.Fatalf("-N with -n accepted")
		}
		if len(cmd.Args) == 0 && cmd.File == "" && !cmd.Opts.All {
			t.Fatalf("nothing to do accepted")
		}
		knobs := roKnobs()
		r := EvalSysctl(cmd, knobs, []api.Counter{{Name: "ipackets", Value: 1}}, root)
		if r.Exit < 0 || r.Exit > len(cmd.Args) {
			t.Fatalf("exit %d for %d args", r.Exit, len(cmd.Args))
		}
		if (r.Stderr != "") && r.Exit == 0 {
			t.Fatalf("stderr %q with exit 0", r.Stderr)
		}
		if !root && len(r.Sets) != 0 {
			t.Fatalf("non-root sets %v", r.Sets)
		}
		for _, st := range r.Sets {
			k, ok := FindKnob(knobs, st.Name)
			if !ok || k.ReadOnly || k.Name == StatsOID {
				t.Fatalf("set of %q", st.Name)
			}
			if st.Value != int64(int32(st.Value)) {
				t.Fatalf("value %d wider than int", st.Value)
			}
		}
		if r.Stderr != "" && (!strings.HasPrefix(r.Stderr, "sysctl: ") || !strings.HasSuffix(r.Stderr, "\n")) {
			t.Fatalf("stderr %q", r.Stderr)
		}
		// The file parser never panics on the same bytes either.
		ParseSysctlFile(strings.NewReader(s), "f")
	})
}
