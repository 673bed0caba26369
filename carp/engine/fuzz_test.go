package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// FuzzLoadConfig feeds config.json bytes to the loader: it never panics, and
// whatever it accepts passes Validate, saves, and loads again to the same
// saved bytes.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		goodConfig,
		`{"version":1}`,
		`{"version":1,"knobs":{"preempt":1,"log":2,"demotion":-2147483648}}`,
		`{"version":1,"ifaces":[{"name":"carp0","clone":true}]}`,
		`{"version":1,"ifaces":[{"name":"carp0","clone":true,"vhids":[{"vhid":1,"carpdev":"em0","advbase":0,"advskew":0}]}]}`,
		`{"version":1,"ifaces":[{"name":"carp0","clone":true,"vhids":[{"vhid":7,"carpdev":"em0","advbase":1}]},{"name":"carp1","clone":true,"vhids":[{"vhid":7,"carpdev":"em0","advbase":1}]}]}`,
		`{"version":1,"ifaces":[{"name":"carp0","clone":true,"vhids":[{"vhid":1,"advbase":1,"addrs":["0.0.0.0/0"]}]}]}`,
		`{"version":1,"ifaces":[{"name":"carp0","clone":true,"vhids":[{"vhid":1,"advbase":1,"addrs":["10.0.0.1/33",""]}]}]}`,
		`{"version":1,"knobs":{"dscp":999,"bogus":1}}`,
		`{"version":1,"ifaces":[{"name":"carp99999999999999999999","clone":true}]}`,
		`{"version":1,"ifaces":[{"name":"em0","vhids":[{"vhid":1,"carpdev":"em0","advbase":1,"key":"k","addrs":["2001:db8::1/64","::ffff:1.2.3.4/128"]}]}]}`,
		`{"version":1,"ifaces":[{"name":"em0","Clone":false,"VHIDS":[{"VHID":3,"Carpdev":"em0","AdvBase":2}]}]}`,
		`{"version":1,"ifaces":[]} `, `null`, `{"version":1}{}`, `{"version":1,"ifaces":[null]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeConfig(b)
		if err != nil {
			if c != nil {
				t.Fatal("an error with a configuration")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted, but Validate says %v", err)
		}
		dir := t.TempDir()
		b, err2 := encodeConfig(c)
		if err2 != nil {
			t.Fatal(err2)
		}
		if err := writeAtomic(dir, configFile, b); err != nil {
			t.Fatal(err)
		}
		saved, err := os.ReadFile(filepath.Join(dir, configFile))
		if err != nil {
			t.Fatal(err)
		}
		again, err := loadConfig(dir)
		if err != nil {
			t.Fatalf("saved configuration does not load: %v\n%s", err, saved)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("reloaded configuration fails Validate: %v", err)
		}
		resaved, err := encodeConfig(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(saved, resaved) {
			t.Fatalf("round trip changed the configuration:\n%s\n---\n%s", saved, resaved)
		}
	})
}

// FuzzIfmap feeds ifmap files to the parser: it never panics, errors name
// the file, and an accepted map holds only valid, unique, mappable names.
func FuzzIfmap(f *testing.F) {
	for _, s := range []string{
		"# BSD=Linux\n\nem0 = eth0\nem1=enp3s0 # uplink\n",
		"em0=eth0\nbogus line\n", "em0=eth0\nem0=eth1\n", "em0=eth0\nem1=eth0\n",
		"carp0=eth0\n", "em0=averyveryverylongname\n", "em0=..\n", "em0=eth0:1\n",
		"em0=eth/0\n", "em 0=eth0\n", "=\n", "em0=eth0=x\n", "\xff=eth0\n", "em0\t=\teth0\r\n",
		"fxp0=eth9 # a comment = with equals\n#em1=eth1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseIfmap(strings.NewReader(s), "F")
		if err != nil {
			if m != nil {
				t.Fatal("an error with a map")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "F:") && !strings.HasPrefix(msg, "read F:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		linux := map[string]string{}
		for b, l := range m {
			if err := ValidIfName(b); err != nil {
				t.Fatalf("BSD name %q accepted: %v", b, err)
			}
			if err := ValidIfName(l); err != nil {
				t.Fatalf("Linux name %q accepted: %v", l, err)
			}
			if api.IsCloneName(b) {
				t.Fatalf("carp name %q mapped", b)
			}
			if other, dup := linux[l]; dup {
				t.Fatalf("%s and %s both map to %s", b, other, l)
			}
			linux[l] = b
		}
	})
}
