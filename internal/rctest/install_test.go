package rctest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMakeInstall runs make install into a temporary DESTDIR with
// PREFIX=/usr/local and checks the tree: binaries, rc.carp, the bsd links
// (relative, so they resolve inside DESTDIR too), man pages and the units
// with the prefix substituted.
func TestMakeInstall(t *testing.T) {
	if testing.Short() { // scripts/test.sh, CI's command, never passes -short
		unavailable(t, "-short: make install builds the commands")
	}
	for _, tool := range []string{"make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s not found: %v", tool, err)
		}
	}
	root := repoRoot(t)
	dest := t.TempDir()
	cmd := exec.Command("make", "-C", root, "install", "DESTDIR="+dest, "PREFIX=/usr/local")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out.String())
	}
	t.Logf("make install took %v", time.Since(start).Round(time.Millisecond))
	p := func(rel string) string { return filepath.Join(dest, "usr", "local", rel) }

	for _, f := range []string{"sbin/carpd", "sbin/ifconfig-carp", "sbin/carpctl-sysctl", "sbin/carpctl-compat", "sbin/rc.carp"} {
		st, err := os.Stat(p(f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if st.Mode().Perm() != 0o755 || !st.Mode().IsRegular() {
			t.Errorf("%s: mode %v, want a regular file 0755", f, st.Mode())
		}
	}
	links := map[string]string{
		"libexec/bsdcarp/bsd/ifconfig": "sbin/ifconfig-carp",
		"libexec/bsdcarp/bsd/sysctl":   "sbin/carpctl-sysctl",
		"libexec/bsdcarp/bsd/kldload":  "sbin/carpctl-compat",
		"libexec/bsdcarp/bsd/kldstat":  "sbin/carpctl-compat",
		"libexec/bsdcarp/bsd/service":  "sbin/carpctl-compat",
	}
	for link, target := range links {
		fi, err := os.Lstat(p(link))
		if err != nil {
			t.Errorf("%s: %v", link, err)
			continue
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is not a symbolic link", link)
			continue
		}
		got, err := filepath.EvalSymlinks(p(link))
		if err != nil {
			t.Errorf("%s: %v", link, err)
			continue
		}
		want, _ := filepath.EvalSymlinks(p(target))
		if got != want {
			t.Errorf("%s resolves to %s, want %s", link, got, want)
		}
	}
	mans, _ := filepath.Glob(filepath.Join(root, "man", "*.8"))
	if len(mans) == 0 {
		t.Errorf("no man pages in man/")
	}
	for _, m := range mans {
		if _, err := os.Stat(p(filepath.Join("share/man/man8", filepath.Base(m)))); err != nil {
			t.Errorf("man page: %v", err)
		}
	}
	units := map[string][]string{
		"carpd.service":   {"ExecStart=/usr/local/sbin/carpd ", "KillSignal=SIGTERM", "Restart=on-failure", "RuntimeDirectory=carpd", "RuntimeDirectoryPreserve=yes", "--state-dir /run/carpd/state ", "ExecReload=/bin/kill -HUP $MAINPID"},
		"carp-rc.service": {"ExecStart=/usr/local/sbin/rc.carp ", "Type=oneshot", "RemainAfterExit=yes", "Requires=carpd.service", "After=carpd.service"},
	}
	for u, wants := range units {
		b, err := os.ReadFile(p(filepath.Join("lib/systemd/system", u)))
		if err != nil {
			t.Errorf("unit: %v", err)
			continue
		}
		s := string(b)
		if strings.Contains(s, "@PREFIX@") {
			t.Errorf("%s: @PREFIX@ not substituted", u)
		}
		for _, w := range wants {
			if !strings.Contains(s, w) {
				t.Errorf("%s: no %q", u, w)
			}
		}
	}

	// The installed rc.carp finds bsdcarp's ifconfig in its libexec dir with
	// nothing of bsdcarp on PATH: with no carpd to answer, it stops at the
	// engine check (it would have refused a foreign ifconfig before that).
	shell := shells(t)["/bin/sh"]
	if shell == "" {
		return
	}
	dir := filepath.Join(root, "testdata", "rc")
	_, errOut, st := runScript(t, shell, p("sbin/rc.carp"), dir,
		[]string{"CARPD_SOCKET=" + filepath.Join(dest, "no-carpd.sock")}, "-f", "handbook9-hosta.conf")
	if st != 2 || !strings.Contains(errOut, "is carpd running? nothing applied") {
		t.Errorf("installed rc.carp without carpd: status %d, stderr %q", st, errOut)
	}
}

// TestMakeInstallRCD: make install-rcd links /etc/rc.d/netif to the
// installed carpctl-compat, and never replaces what is already there.
func TestMakeInstallRCD(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		unavailable(t, "make not found: %v", err)
	}
	root := repoRoot(t)
	installRCD := func(dest string) string {
		t.Helper()
		cmd := exec.Command("make", "-s", "-C", root, "install-rcd", "DESTDIR="+dest, "PREFIX=/usr/local")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install-rcd: %v\n%s", err, out)
		}
		return string(out)
	}
	dest := t.TempDir()
	link := filepath.Join(dest, "etc", "rc.d", "netif")
	installRCD(dest)
	if got, err := os.Readlink(link); err != nil || got != "/usr/local/sbin/carpctl-compat" {
		t.Fatalf("/etc/rc.d/netif -> %q (%v), want /usr/local/sbin/carpctl-compat", got, err)
	}
	if out := installRCD(dest); !strings.Contains(out, "exists: left alone") {
		t.Errorf("second make install-rcd said %q", out)
	}

	// A host's own /etc/rc.d/netif stays as it was.
	dest = t.TempDir()
	link = filepath.Join(dest, "etc", "rc.d", "netif")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(link, []byte("#!/bin/sh\n# the host's\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := installRCD(dest); !strings.Contains(out, "exists: left alone") {
		t.Errorf("make install-rcd over a file said %q", out)
	}
	if b, err := os.ReadFile(link); err != nil || string(b) != "#!/bin/sh\n# the host's\n" {
		t.Errorf("make install-rcd changed the host's /etc/rc.d/netif: %q %v", b, err)
	}
}
