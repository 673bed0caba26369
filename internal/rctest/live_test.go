package rctest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
)

// fakeIfconfig stands in for ifconfig-carp and carpctl-sysctl: it logs each
// call, under the name it was called by (the libexec link: ifconfig or
// sysctl), to $FAKE_STATE/log, keeps the interfaces in $FAKE_STATE/ifs, answers
// "ifconfig IF" and "ifconfig -l" from them, refuses a second create with
// FreeBSD's words (from carp/bsd, their one copy), and fails any command
// with the word FAIL in it.
var fakeIfconfig = strings.NewReplacer(
	"@NOIF@", bsd.Text(&api.Error{Reason: api.ReasonNoInterface, Name: "$1"}),
	"@EXISTS@", bsd.Text(api.Refused(api.StepCreate, syscall.EEXIST)),
	"@INVAL@", bsd.Text(errFail),
).Replace(`#!/bin/sh
st=$FAKE_STATE
me=${0##*/}
echo "$me $*" >>"$st/log"
[ "$me" = sysctl ] && exit 0
if [ $# -eq 1 ]; then
	if [ "$1" = -l ]; then
		tr '\n' ' ' <"$st/ifs"
		echo
		exit 0
	fi
	grep -qx -- "$1" "$st/ifs" && exit 0
	echo "ifconfig: @NOIF@" >&2
	exit 1
fi
if [ "$2" = create ]; then
	if grep -qx -- "$1" "$st/ifs"; then
		echo "ifconfig: @EXISTS@" >&2
		exit 1
	fi
	echo "$1" >>"$st/ifs"
	exit 0
fi
case " $* " in
*" FAIL "*) echo "ifconfig: @INVAL@" >&2; exit 1 ;;
esac
exit 0
`)

// errFail is the refusal the stand-in prints for a line with FAIL in it.
var errFail = api.Refused(api.StepSetVHID, syscall.EINVAL)

// installedLayout makes PREFIX/sbin/{rc.carp,ifconfig-carp,carpctl-sysctl}
// and the PREFIX/libexec/bsdcarp/bsd links, as make install does, with the
// stand-ins for the two commands; it returns PREFIX and the state dir.
func installedLayout(t *testing.T) (prefix, state string) {
	t.Helper()
	tmp := t.TempDir()
	prefix = filepath.Join(tmp, "prefix")
	state = filepath.Join(tmp, "state")
	sbin := filepath.Join(prefix, "sbin")
	bsd := filepath.Join(prefix, "libexec", "bsdcarp", "bsd")
	for _, d := range []string{sbin, bsd, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "rc.carp"))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(sbin, "rc.carp"), script, 0o755))
	must(os.WriteFile(filepath.Join(sbin, "ifconfig-carp"), []byte(fakeIfconfig), 0o755))
	must(os.WriteFile(filepath.Join(sbin, "carpctl-sysctl"), []byte(fakeIfconfig), 0o755))
	must(os.Symlink("../../../sbin/ifconfig-carp", filepath.Join(bsd, "ifconfig")))
	must(os.Symlink("../../../sbin/carpctl-sysctl", filepath.Join(bsd, "sysctl")))
	// The physical interfaces exist already.
	must(os.WriteFile(filepath.Join(state, "ifs"), []byte("em0\nfxp0\n"), 0o644))
	return prefix, state
}

func readLog(t *testing.T, state string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(state, "log")); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// changes keeps the calls that change something: not the "ifconfig -l" and
// "ifconfig IF" queries.
func changes(log []string) []string {
	var out []string
	for _, l := range log {
		if len(strings.Fields(l)) <= 2 && !strings.HasSuffix(l, " up") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// TestRCCarpTwice: the installed rc.carp finds its ifconfig and sysctl in
// PREFIX/libexec/bsdcarp/bsd with nothing of bsdcarp on PATH; run twice on
// the seed's <= 9 hostc, the second run creates nothing (carp0 and carp1
// exist) and re-applies only lines the engine treats as already done.
func TestRCCarpTwice(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "testdata", "rc")
	for name, shell := range shells(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			prefix, state := installedLayout(t)
			rc := filepath.Join(prefix, "sbin", "rc.carp")
			env := []string{"FAKE_STATE=" + state}
			args := []string{"-f", "handbook9-hostc.conf", "-s", "sysctl-carp.sysctl"}
			out, errOut, st := runScript(t, shell, rc, dir, env, args...)
			if st != 0 || out != "" || errOut != "rc.carp: ignoring hostname (not a CARP or interface setting)\n" {
				t.Fatalf("first run: status %d, stdout %q, stderr %q", st, out, errOut)
			}
			first := changes(readLog(t, state))
			dry, _, _ := runRC(t, shell, dir, nil, append([]string{"-n"}, args...)...)
			want := strings.Split(strings.TrimRight(dry, "\n"), "\n")
			if strings.Join(first, "\n") != strings.Join(want, "\n") {
				t.Errorf("first run ran\n%s\nwant (the dry run)\n%s", strings.Join(first, "\n"), strings.Join(want, "\n"))
			}

			out, errOut, st = runScript(t, shell, rc, dir, env, args...)
			if st != 0 || out != "" || strings.Contains(errOut, "File exists") {
				t.Fatalf("second run: status %d, stdout %q, stderr %q", st, out, errOut)
			}
			second := changes(readLog(t, state))
			for _, l := range second {
				if strings.HasSuffix(l, " create") {
					t.Errorf("second run created again: %s", l)
				}
			}
			var noCreate []string
			for _, l := range first {
				if !strings.HasSuffix(l, " create") {
					noCreate = append(noCreate, l)
				}
			}
			if strings.Join(second, "\n") != strings.Join(noCreate, "\n") {
				t.Errorf("second run ran\n%s\nwant\n%s", strings.Join(second, "\n"), strings.Join(noCreate, "\n"))
			}
			ifs, _ := os.ReadFile(filepath.Join(state, "ifs"))
			got := strings.Fields(string(ifs))
			sort.Strings(got)
			if strings.Join(got, " ") != "carp0 carp1 em0 fxp0" {
				t.Errorf("interfaces after two runs: %v", got)
			}
		})
	}
}

// TestRCCarpFailureContinues: a command that fails is reported, the others
// still run, and the exit status is 1.
func TestRCCarpFailureContinues(t *testing.T) {
	shell := shells(t)["/bin/sh"]
	if shell == "" {
		unavailable(t, "no /bin/sh")
	}
	prefix, state := installedLayout(t)
	conf := filepath.Join(t.TempDir(), "rc.conf")
	if err := os.WriteFile(conf, []byte(`ifconfig_em0="inet 192.168.1.3/24"
ifconfig_em0_alias0="inet vhid 1 pass FAIL alias 192.168.1.50/32"
ifconfig_em0_alias1="inet vhid 2 pass ok alias 192.168.1.51/32"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, st := runScript(t, shell, filepath.Join(prefix, "sbin", "rc.carp"), state, []string{"FAKE_STATE=" + state}, "-f", conf)
	if st != 1 {
		t.Errorf("status %d, want 1", st)
	}
	wantErr := "ifconfig: " + bsd.Text(errFail) + "\nrc.carp: failed (exit status 1): ifconfig em0 inet vhid 1 pass FAIL alias 192.168.1.50/32\n"
	if errOut != wantErr {
		t.Errorf("stderr %q, want %q", errOut, wantErr)
	}
	log := changes(readLog(t, state))
	if len(log) == 0 || log[len(log)-1] != "ifconfig em0 inet vhid 2 pass ok alias 192.168.1.51/32" {
		t.Errorf("the alias after the failed one did not run: %q", log)
	}
}

// TestRCCarpRefusesForeignIfconfig: with a Linux ifconfig(8) first on PATH
// instead of bsdcarp's, rc.carp runs nothing.
func TestRCCarpRefusesForeignIfconfig(t *testing.T) {
	shell := shells(t)["/bin/sh"]
	if shell == "" {
		unavailable(t, "no /bin/sh")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ifconfig", "sysctl"} {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\necho ran >>\"$FAKE_STATE/log\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(repoRoot(t), "testdata", "rc")
	_, errOut, st := runRC(t, shell, dir, []string{"PATH=" + bin + ":/usr/bin:/bin", "FAKE_STATE=" + tmp}, "-f", "handbook10-hosta.conf")
	if st != 2 || !strings.Contains(errOut, "is not bsdcarp's ifconfig-carp") {
		t.Errorf("status %d, stderr %q", st, errOut)
	}
	if _, err := os.Stat(filepath.Join(tmp, "log")); err == nil {
		t.Errorf("a foreign command ran")
	}
}
