package rctest

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/rc")

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// unavailable skips t when the machine lacks what it needs, and fails it in
// CI (CI set), where a skip would count a boot-path test that never ran as
// passed.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format+" (CI must run this test)", args...)
	}
	t.Skipf(format, args...)
}

// shells returns the shells to run rc.carp under: /bin/sh, dash and bash,
// those that exist (on Debian /bin/sh is dash: it runs twice, by both names).
func shells(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"/bin/sh", "dash", "bash"} {
		if p, err := exec.LookPath(name); err == nil {
			out[name] = p
		}
	}
	if len(out) == 0 {
		unavailable(t, "no POSIX shell found")
	}
	return out
}

// isDash reports whether the shell at path is dash, whose own error messages
// the goldens hold.
func isDash(path string) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		real = path
	}
	return filepath.Base(real) == "dash"
}

type rcCase struct {
	name string
	args []string
}

func cases(t *testing.T, dir string) []rcCase {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		for _, ext := range []string{".conf", ".args"} {
			if base, ok := strings.CutSuffix(n, ext); ok && !strings.Contains(base, ".") {
				names[base] = true
			}
		}
	}
	var out []rcCase
	for n := range names {
		exists := func(ext string) bool {
			_, err := os.Stat(filepath.Join(dir, n+ext))
			return err == nil
		}
		var args []string
		if b, err := os.ReadFile(filepath.Join(dir, n+".args")); err == nil {
			args = strings.Fields(string(b))
		} else {
			args = []string{"-f", n + ".conf"}
			if exists(".local") {
				args = append(args, "-f", n+".local")
			}
			if exists(".sysctl") {
				args = append(args, "-s", n+".sysctl")
			}
			if exists(".loader") {
				args = append(args, "-l", n+".loader")
			}
		}
		out = append(out, rcCase{n, args})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// runRC runs rc.carp under shell in dir with a minimal environment.
func runRC(t *testing.T, shell, dir string, env []string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	return runScript(t, shell, filepath.Join(repoRoot(t), "scripts", "rc.carp"), dir, env, args...)
}

// runScript runs script under shell in dir with a minimal environment plus env.
func runScript(t *testing.T, shell, script, dir string, env []string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(shell, append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		status = ee.ExitCode()
	default:
		t.Fatalf("run %s: %v", script, err)
	}
	return o.String(), e.String(), status
}

func readGolden(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return ""
		}
		t.Fatal(err)
	}
	return string(b)
}

func writeGolden(t *testing.T, path, s string) {
	t.Helper()
	if s == "" {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lastLine is the last line of s (without its newline).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestRCCarpGolden(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "testdata", "rc")
	sh := shells(t)
	var names []string
	for n := range sh {
		names = append(names, n)
	}
	sort.Strings(names)
	cs := cases(t, dir)
	if len(cs) < 20 {
		t.Fatalf("found %d cases in %s, want the whole set", len(cs), dir)
	}
	if *update {
		// The goldens are dash's: Debian's /bin/sh, and the shell whose
		// error messages they quote.
		p, err := exec.LookPath("dash")
		if err != nil {
			t.Fatal("-update needs dash")
		}
		for _, c := range cs {
			out, errOut, st := runRC(t, p, dir, nil, append([]string{"-n"}, c.args...)...)
			base := filepath.Join(dir, c.name)
			writeGolden(t, base+".stdout", out)
			writeGolden(t, base+".stderr", errOut)
			exit := ""
			if st != 0 {
				exit = strconv.Itoa(st) + "\n"
			}
			writeGolden(t, base+".exit", exit)
		}
	}
	for _, c := range cs {
		for _, shName := range names {
			shPath := sh[shName]
			t.Run(c.name+"/"+filepath.Base(shName), func(t *testing.T) {
				out, errOut, st := runRC(t, shPath, dir, nil, append([]string{"-n"}, c.args...)...)
				base := filepath.Join(dir, c.name)
				wantOut := readGolden(t, base+".stdout")
				wantErr := readGolden(t, base+".stderr")
				wantSt := 0
				if s := strings.TrimSpace(readGolden(t, base+".exit")); s != "" {
					n, err := strconv.Atoi(s)
					if err != nil {
						t.Fatalf("%s.exit: %v", base, err)
					}
					wantSt = n
				}
				if out != wantOut {
					t.Errorf("rc.carp -n %s: stdout\n%s\nwant\n%s", strings.Join(c.args, " "), out, wantOut)
				}
				if st != wantSt {
					t.Errorf("rc.carp -n %s: exit status %d, want %d", strings.Join(c.args, " "), st, wantSt)
				}
				// Parse errors are in the shell's own words: exact for
				// dash, whose words the goldens hold; for another shell
				// only rc.carp's own closing line is compared.
				if strings.HasPrefix(c.name, "syntax") && !isDash(shPath) {
					if lastLine(errOut) != lastLine(wantErr) {
						t.Errorf("rc.carp -n %s: stderr ends\n%s\nwant\n%s", strings.Join(c.args, " "), lastLine(errOut), lastLine(wantErr))
					}
					if !strings.Contains(errOut, "syntax-error.conf") {
						t.Errorf("stderr does not name the file:\n%s", errOut)
					}
				} else if errOut != wantErr {
					t.Errorf("rc.carp -n %s: stderr\n%s\nwant\n%s", strings.Join(c.args, " "), errOut, wantErr)
				}
			})
		}
	}
}

// TestRCCarpSyntaxErrorAppliesNothing: an rc.conf the shell cannot parse
// stops rc.carp before any command, with a non-zero status.
func TestRCCarpSyntaxErrorAppliesNothing(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "testdata", "rc")
	for name, p := range shells(t) {
		out, errOut, st := runRC(t, p, dir, nil, "-n", "-f", "handbook10-hosta.conf", "-f", "syntax-error.conf")
		if st == 0 || out != "" {
			t.Errorf("%s: status %d, stdout %q; want non-zero and nothing", name, st, out)
		}
		if !strings.Contains(errOut, "syntax-error.conf") || !strings.Contains(errOut, "nothing applied") {
			t.Errorf("%s: stderr %q", name, errOut)
		}
	}
}
