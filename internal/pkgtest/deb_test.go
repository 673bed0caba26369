package pkgtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const pkg = "bsdcarp"

// Where the package or an admin's "systemctl enable" can write, and where
// carpd's state lives. A snapshot keeps the entries under them whose path
// names carp, so that other tests' files never count.
var snapshotRoots = []string{
	"/usr/sbin", "/usr/libexec", "/usr/lib/systemd/system", "/lib/systemd/system",
	"/usr/share/man/man8", "/usr/share/doc", "/etc/carpd", "/etc/default",
	"/etc/systemd/system", "/var/lib/carpd", "/run/carpd/state",
	"/var/lib/systemd/deb-systemd-helper-enabled", "/var/lib/dpkg/info",
}

// The links "systemctl enable" makes for the units' WantedBy=multi-user.target.
var enableLinks = []string{
	"/etc/systemd/system/multi-user.target.wants/carpd.service",
	"/etc/systemd/system/multi-user.target.wants/carp-rc.service",
}

// What deb-systemd-helper keeps of the units, for purge: the test removes
// these itself when it fails.
var helperState = []string{
	"/var/lib/systemd/deb-systemd-helper-enabled/carpd.service.dsh-also",
	"/var/lib/systemd/deb-systemd-helper-enabled/carp-rc.service.dsh-also",
}

// carpd's state directories, which purge removes: the unit's, and that of
// earlier versions.
var stateDirs = []string{"/run/carpd/state", "/var/lib/carpd"}

// TestDebPackage builds the package with make deb, installs it into this
// machine, checks it, removes it and purges it; see the package comment.
func TestDebPackage(t *testing.T) {
	root, deb := buildDeb(t)
	_, err := os.Lstat("/run/carpd")
	hadRunDir := err == nil
	before := snapshot(t)
	// From here on the machine is changed: put it back whatever happens.
	t.Cleanup(func() {
		if _, err := run("dpkg-query", "-W", pkg); err == nil {
			if out, err := run("dpkg", "--purge", pkg); err != nil {
				t.Errorf("cleanup: dpkg --purge %s: %v\n%s", pkg, err, out)
			}
		}
		// The pre-flight check made sure none of these was there before.
		for _, l := range append(enableLinks, helperState...) {
			os.Remove(l)
		}
		for _, d := range stateDirs {
			os.RemoveAll(d)
		}
		if !hadRunDir {
			os.Remove("/run/carpd") // only if empty: a carpd may have come since
		}
	})

	if out, err := run("dpkg", "-i", deb); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	if out, _ := run("dpkg-query", "-W", "-f=${Status}", pkg); out != "install ok installed" {
		t.Fatalf("after dpkg -i, status %q", out)
	}
	installed := packageFiles(t)
	checkFiles(t, root, installed)
	checkBinaries(t, installed)
	checkUnits(t)
	checkConffiles(t, root)
	for _, l := range enableLinks {
		if _, err := os.Lstat(l); err == nil {
			t.Errorf("dpkg -i enabled a unit: %s exists", l)
		}
	}
	// An upgrade (here to the same version) runs the scripts' other branch.
	if out, err := run("dpkg", "-i", deb); err != nil {
		t.Fatalf("dpkg -i a second time: %v\n%s", err, out)
	}
	enableAndLeaveState(t)
	checkRemove(t, installed)
	checkPurge(t, before)
}

// buildDeb checks that the test may run here, builds the package into a
// temporary directory and checks that none of its files, nor anything
// purge removes, exists on the machine yet.
func buildDeb(t *testing.T) (root, deb string) {
	t.Helper()
	if testing.Short() { // scripts/test.sh, CI's command, never passes -short
		unavailable(t, "-short: make deb builds the commands")
	}
	if os.Geteuid() != 0 {
		unavailable(t, "needs root: the package is installed into this machine with dpkg -i")
	}
	for _, tool := range []string{"make", "go", "dpkg", "dpkg-deb", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s not found: %v", tool, err)
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run("dpkg-query", "-W", "-f=${Status}", pkg); err == nil {
		t.Fatalf("dpkg knows %s on this machine (%s): this test would remove it", pkg, out)
	}
	deb = filepath.Join(t.TempDir(), pkg+".deb")
	if out, err := run("make", "-C", root, "--no-print-directory", "deb", "DEB="+deb); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	checkControl(t, root, deb)
	var there []string
	for _, p := range append(append(append(debPaths(t, deb), enableLinks...), helperState...), stateDirs...) {
		if _, err := os.Lstat(p); err == nil {
			there = append(there, p)
		}
	}
	if len(there) > 0 {
		t.Fatalf("already on this machine, and this test would replace or remove them: %v", there)
	}
	return root, deb
}

// enableAndLeaveState does what an admin and carpd do: enable the units
// and leave state (the keys are in it). Both must go with a purge.
func enableAndLeaveState(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemctl"); err == nil {
		if out, err := run("systemctl", "enable", "carpd.service", "carp-rc.service"); err != nil {
			t.Fatalf("systemctl enable: %v\n%s", err, out)
		}
		for _, l := range enableLinks {
			if _, err := os.Lstat(l); err != nil {
				t.Errorf("after systemctl enable: %v", err)
			}
		}
	} else {
		t.Logf("no systemctl: the enabled units' links are not part of this run")
	}
	for _, d := range stateDirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "config.json"), []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRemove: dpkg -r removes every file but the conffiles.
func checkRemove(t *testing.T, installed []string) {
	t.Helper()
	if out, err := run("dpkg", "-r", pkg); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, out)
	}
	if out, _ := run("dpkg-query", "-W", "-f=${Status}", pkg); out != "deinstall ok config-files" {
		t.Errorf("after dpkg -r, status %q", out)
	}
	for _, f := range installed {
		_, err := os.Lstat(f)
		switch conffile := f == "/etc/default/carpd" || f == "/etc/carpd/ifmap"; {
		case conffile && err != nil:
			t.Errorf("dpkg -r removed the conffile %s", f)
		case !conffile && err == nil:
			t.Errorf("dpkg -r left %s", f)
		}
	}
}

// checkPurge: after dpkg --purge every place the package, systemctl enable
// or carpd wrote to is as it was before dpkg -i.
func checkPurge(t *testing.T, before map[string]string) {
	t.Helper()
	if out, err := run("dpkg", "--purge", pkg); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	if out, err := run("dpkg-query", "-W", pkg); err == nil {
		t.Errorf("after dpkg --purge dpkg still knows %s: %s", pkg, out)
	}
	after := snapshot(t)
	for p, was := range before {
		if now, ok := after[p]; !ok {
			t.Errorf("dpkg -i and --purge removed %s (%s)", p, was)
		} else if now != was {
			t.Errorf("dpkg -i and --purge changed %s: %s, was %s", p, now, was)
		}
	}
	for p, now := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("dpkg --purge left %s (%s)", p, now)
		}
	}
}

// checkControl: the package's name, version (scripts/pkgversion, from
// VERSION) and architecture (GOARCH's Debian name).
func checkControl(t *testing.T, root, deb string) {
	t.Helper()
	want, err := run(filepath.Join(root, "scripts", "pkgversion"))
	if err != nil {
		t.Fatalf("scripts/pkgversion: %v\n%s", err, want)
	}
	v, _ := os.ReadFile(filepath.Join(root, "VERSION"))
	if !strings.HasPrefix(want, strings.TrimSpace(string(v))) {
		t.Errorf("scripts/pkgversion says %q, VERSION %q", want, v)
	}
	arch, err := run("go", "env", "GOARCH")
	if err != nil {
		t.Fatal(err)
	}
	if debian, ok := map[string]string{"386": "i386", "arm": "armhf"}[arch]; ok {
		arch = debian
	}
	for field, w := range map[string]string{"Package": pkg, "Version": want, "Architecture": arch} {
		if got, err := run("dpkg-deb", "-f", deb, field); err != nil || got != w {
			t.Errorf("package %s: %q (%v), want %q", field, got, err, w)
		}
	}
}

// debPaths lists the files and links (not directories) in the package.
func debPaths(t *testing.T, deb string) []string {
	t.Helper()
	out, err := run("dpkg-deb", "-c", deb)
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v\n%s", err, out)
	}
	var paths []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || strings.HasPrefix(f[0], "d") {
			continue
		}
		paths = append(paths, strings.TrimPrefix(f[5], "."))
	}
	if len(paths) == 0 {
		t.Fatalf("no files in the package:\n%s", out)
	}
	return paths
}

// packageFiles lists the files and links (not directories) dpkg installed.
func packageFiles(t *testing.T) []string {
	t.Helper()
	out, err := run("dpkg-query", "-L", pkg)
	if err != nil {
		t.Fatalf("dpkg-query -L: %v\n%s", err, out)
	}
	var files []string
	for _, p := range strings.Split(out, "\n") {
		if st, err := os.Lstat(p); err == nil && !st.IsDir() {
			files = append(files, p)
		}
	}
	return files
}

// documented returns the paths the man pages' FILES sections name, and the
// PREFIX/... paths named anywhere in them, with PREFIX the package's /usr.
func documented(t *testing.T, root string) map[string]bool {
	t.Helper()
	pages, _ := filepath.Glob(filepath.Join(root, "man", "*.8"))
	if len(pages) == 0 {
		t.Fatal("no man pages in man/")
	}
	out := map[string]bool{}
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		inFiles := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, ".Sh ") {
				inFiles = line == ".Sh FILES"
			}
			f := strings.Fields(line)
			var p string
			switch {
			case len(f) >= 3 && f[0] == ".It" && f[1] == "Pa" && inFiles:
				p = f[2]
			case len(f) >= 2 && f[0] == ".Pa" && strings.HasPrefix(f[1], "PREFIX/"):
				p = f[1]
			default:
				continue
			}
			if rest, ok := strings.CutPrefix(p, "PREFIX/"); ok {
				p = "/usr/" + rest
			}
			out[strings.TrimSuffix(p, "/")] = true
		}
	}
	return out
}

// checkFiles: every file the man pages name that is the package's is
// installed, and every file installed is named by a man page (or is a man
// page, or the package's documentation).
func checkFiles(t *testing.T, root string, installed []string) {
	t.Helper()
	docs := documented(t, root)
	ours := func(p string) bool {
		return strings.HasPrefix(p, "/usr/") || strings.HasPrefix(p, "/etc/carpd/") || p == "/etc/default/carpd"
	}
	n := 0
	for p := range docs {
		if !ours(p) {
			continue
		}
		n++
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("a man page names %s, the package did not install it: %v", p, err)
		}
	}
	if n < 8 {
		t.Errorf("the man pages name only %d of the package's paths: %v", n, docs)
	}
	for _, p := range installed {
		if strings.HasPrefix(p, "/usr/share/doc/"+pkg+"/") || docs[p] || docs[filepath.Dir(p)] && strings.HasSuffix(filepath.Dir(p), "/bsd") {
			continue
		}
		if name, ok := strings.CutPrefix(p, "/usr/share/man/man8/"); ok {
			src := filepath.Join(root, "man", strings.TrimSuffix(name, ".gz"))
			checkManPage(t, src, p)
			continue
		}
		t.Errorf("the package installs %s, which no man page's FILES names", p)
	}
}

// checkManPage: the installed page is the gzipped source page.
func checkManPage(t *testing.T, src, installed string) {
	t.Helper()
	want, err := os.ReadFile(src)
	if err != nil {
		t.Errorf("%s has no source page: %v", installed, err)
		return
	}
	f, err := os.Open(installed)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Errorf("%s: %v", installed, err)
		return
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s is not %s gzipped (%v)", installed, src, err)
	}
}

// checkBinaries: the commands are static and stripped, carpd runs, and the
// bsd/ entries resolve to installed commands.
func checkBinaries(t *testing.T, installed []string) {
	t.Helper()
	elves := 0
	for _, p := range installed {
		if !strings.HasPrefix(p, "/usr/sbin/") {
			continue
		}
		f, err := elf.Open(p)
		if err != nil {
			continue // rc.carp: a shell script
		}
		elves++
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked", p)
			}
		}
		for _, s := range []string{".symtab", ".debug_info"} {
			if f.Section(s) != nil {
				t.Errorf("%s is not stripped: it has %s", p, s)
			}
		}
		f.Close()
	}
	if elves < 3 {
		t.Errorf("only %d ELF commands in /usr/sbin", elves)
	}

	// The packaged carpd runs and says which package it comes from.
	version, _ := run("dpkg-query", "-W", "-f=${Version}", pkg)
	out, err := run("/usr/sbin/carpd", "--version")
	if err != nil || !strings.HasPrefix(out, "carpd "+version+" ") {
		t.Errorf("/usr/sbin/carpd --version: %v\n%s (want carpd %s ...)", err, out, version)
	} else {
		t.Logf("carpd: %s", strings.SplitN(out, "\n", 2)[0])
	}

	bsd := "/usr/libexec/bsdcarp/bsd"
	entries, err := os.ReadDir(bsd)
	if err != nil || len(entries) < 2 {
		t.Fatalf("%s: %v (%d entries)", bsd, err, len(entries))
	}
	for _, e := range entries {
		p := filepath.Join(bsd, e.Name())
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if st, err := os.Stat(real); err != nil || st.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s -> %s is not an executable (%v)", p, real, err)
		}
	}
	for name, want := range map[string]string{"ifconfig": "/usr/sbin/ifconfig-carp", "sysctl": "/usr/sbin/carpctl-sysctl"} {
		if got, _ := filepath.EvalSymlinks(filepath.Join(bsd, name)); got != want {
			t.Errorf("%s/%s resolves to %q, want %s", bsd, name, got, want)
		}
	}
}

// checkUnits: the installed units run the installed commands, read
// /etc/default/carpd, and pass systemd-analyze verify.
func checkUnits(t *testing.T) {
	t.Helper()
	dir := "/usr/lib/systemd/system"
	units := map[string][]string{
		"carpd.service":   {"ExecStart=/usr/sbin/carpd ", "EnvironmentFile=-/etc/default/carpd", "$CARPD_OPTS"},
		"carp-rc.service": {"ExecStart=/usr/sbin/rc.carp "},
	}
	var paths []string
	for u, wants := range units {
		p := filepath.Join(dir, u)
		paths = append(paths, p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: no %q", p, w)
			}
		}
		if strings.Contains(string(b), "@PREFIX@") {
			t.Errorf("%s: @PREFIX@ not substituted", p)
		}
	}
	sort.Strings(paths)
	t.Run("systemd-analyze", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			unavailable(t, "no systemd-analyze (package systemd): %v", err)
		}
		out, err := run("systemd-analyze", append([]string{"verify"}, paths...)...)
		if err != nil {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if strings.Contains(sc.Text(), "carpd.service") || strings.Contains(sc.Text(), "carp-rc.service") {
				t.Errorf("systemd-analyze verify: %s", sc.Text())
			}
		}
	})
}

// checkConffiles: /etc/default/carpd and /etc/carpd/ifmap are the samples
// of dist/etc and dpkg treats them as conffiles.
func checkConffiles(t *testing.T, root string) {
	t.Helper()
	out, err := run("dpkg-query", "-W", "-f=${Conffiles}", pkg)
	if err != nil {
		t.Fatalf("dpkg-query: %v\n%s", err, out)
	}
	for _, f := range []string{"/etc/default/carpd", "/etc/carpd/ifmap"} {
		if !regexp.MustCompile(`(?m)^ ?` + regexp.QuoteMeta(f) + ` [0-9a-f]{32}$`).MatchString(out) {
			t.Errorf("%s is not a conffile: %q", f, out)
		}
		got, err := os.ReadFile(f)
		want, _ := os.ReadFile(filepath.Join(root, "dist", "etc", strings.TrimPrefix(f, "/etc/")))
		if err != nil || !bytes.Equal(got, want) || len(want) == 0 {
			t.Errorf("%s is not dist/etc's sample (%v)", f, err)
		}
	}
}

// snapshot maps every path under snapshotRoots that names carp to its type,
// mode and link target.
func snapshot(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range snapshotRoots {
		err := filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !strings.Contains(p, "carp") {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			desc := info.Mode().String()
			if info.Mode()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				desc += " -> " + target
			} else if info.Mode().IsRegular() {
				desc += fmt.Sprintf(" %d bytes", info.Size())
			}
			out[p] = desc
			return nil
		})
		if err != nil {
			t.Fatalf("snapshot of %s: %v", r, err)
		}
	}
	return out
}

// run runs a command without a terminal or input and returns its combined
// output, trimmed.
func run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// unavailable skips t when the machine lacks what it needs, and fails it in
// CI (CI set), where a skip would count a test that never ran as passed.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format+" (CI must run this test)", args...)
	}
	t.Skipf(format, args...)
}
