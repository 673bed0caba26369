package rctest

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeUninstall runs make install and then make uninstall into a
// temporary DESTDIR, with the default unit directory and with
// SYSTEMDUNITDIR, next to files that are not bsdcarp's: uninstall removes
// every file and link install made, and the bsdcarp directories, and
// nothing else.
func TestMakeUninstall(t *testing.T) {
	if testing.Short() { // scripts/test.sh, CI's command, never passes -short
		unavailable(t, "-short: make install builds the commands")
	}
	for _, tool := range []string{"make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s not found: %v", tool, err)
		}
	}
	root := repoRoot(t)
	for _, vars := range [][]string{
		{"PREFIX=/usr/local"},
		{"PREFIX=/usr", "SYSTEMDUNITDIR=/lib/systemd/system"},
	} {
		t.Run(strings.Join(vars, ","), func(t *testing.T) {
			dest := t.TempDir()
			prefix := filepath.Join(dest, strings.TrimPrefix(vars[0], "PREFIX="))
			// Not bsdcarp's: an admin's command, man page and unit.
			foreign := []string{
				filepath.Join(prefix, "sbin", "carpd-wrapper"),
				filepath.Join(prefix, "share", "man", "man8", "ip.8"),
				filepath.Join(prefix, "lib", "systemd", "system", "other.service"),
				filepath.Join(dest, "lib", "systemd", "system", "other.service"),
			}
			for _, f := range foreign {
				if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, []byte("not bsdcarp's\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			run := func(target string) string {
				t.Helper()
				cmd := exec.Command("make", append([]string{"-C", root, "--no-print-directory", target, "DESTDIR=" + dest}, vars...)...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("make %s %v: %v\n%s", target, vars, err, out.String())
				}
				return out.String()
			}
			run("install")
			installed := files(t, dest)
			if len(installed) < len(foreign)+8 { // 4 commands, 2 links, man pages, units
				t.Fatalf("make install installed only %v", installed)
			}
			out := run("uninstall")
			left := files(t, dest)
			want := map[string]bool{}
			for _, f := range foreign {
				want[f] = true
			}
			for _, f := range left {
				if !want[f] {
					t.Errorf("make uninstall left %s", f)
				}
				delete(want, f)
			}
			for f := range want {
				t.Errorf("make uninstall removed %s, which make install had not installed", f)
			}
			removed := 0
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "rm ") {
					removed++
				}
			}
			if removed != len(installed)-len(foreign) {
				t.Errorf("make uninstall said it removed %d files, install made %d:\n%s", removed, len(installed)-len(foreign), out)
			}
			_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() && d.Name() == "bsdcarp" {
					t.Errorf("make uninstall left the directory %s", p)
				}
				return nil
			})
		})
	}
}

// files lists every file and symbolic link under dir (directories not).
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
