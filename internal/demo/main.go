// Command demo builds the FreeBSD Handbook's two-firewall CARP lab (28.5) in
// network namespaces, runs each firewall's runbook verbatim through bin/bsd,
// fails the master and shows the backup taking over, then removes everything
// it made. Run it as root through `make demo` (scripts/demo.sh).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// runner is a netlab.T for a program: Fatalf stops the demo, and cleanups run
// in reverse order at the end, on failure and on Ctrl-C.
type runner struct {
	cleanups []func()
	dir      string
}

type fatal struct{ msg string }

func (r *runner) Helper()                         {}
func (r *runner) Logf(format string, args ...any) { fmt.Printf(format+"\n", args...) }
func (r *runner) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
}
func (r *runner) Fatalf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }
func (r *runner) Skip(args ...any)                  { panic(fatal{fmt.Sprint(args...)}) }
func (r *runner) Cleanup(f func())                  { r.cleanups = append(r.cleanups, f) }
func (r *runner) TempDir() string                   { return r.dir }

func (r *runner) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
	os.RemoveAll(r.dir)
}

func main() {
	bin := flag.String("bin", "bin", "directory of the built commands")
	runbooks := flag.String("runbooks", "testdata/runbooks", "directory of the handbook runbooks")
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "bsdcarp-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r := &runner{dir: dir}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\ndemo: interrupted, cleaning up")
		r.cleanup()
		os.Exit(130)
	}()
	code := 0
	func() {
		defer func() {
			if v := recover(); v != nil {
				if f, ok := v.(fatal); ok {
					fmt.Fprintln(os.Stderr, "demo: "+f.msg)
					code = 1
					return
				}
				r.cleanup()
				panic(v)
			}
		}()
		demo(r, abs, *runbooks)
	}()
	r.cleanup()
	fmt.Println("\nRemoved every namespace, link and process the demo created.")
	os.Exit(code)
}

type fw struct {
	lab   *netlab.Lab
	name  string
	env   []string
	carpd *netlab.Proc
	bin   string
}

func (f *fw) start() {
	f.carpd = f.lab.Start(f.name, f.name+"-carpd", f.env, filepath.Join(f.bin, "carpd"))
	if _, ok := netlab.Eventually(10*time.Second, func() bool {
		_, _, code := f.lab.Exec(f.name, f.env, "ifconfig", "-l")
		return code == 0
	}); !ok {
		panic(fatal{f.name + ": carpd did not start:\n" + f.carpd.Output()})
	}
}

// run shows a command as the admin would type it, and its output.
func (f *fw) run(cmd string) string {
	fmt.Printf("%s# %s\n", f.name, cmd)
	out, errOut, _ := f.lab.Exec(f.name, f.env, "sh", "-c", cmd)
	fmt.Print(out, errOut)
	return out
}

func (f *fw) state(iface string) string {
	out, _, _ := f.lab.Exec(f.name, f.env, "ifconfig", iface)
	for _, l := range strings.Split(out, "\n") {
		if fs := strings.Fields(l); len(fs) > 1 && fs[0] == "carp:" {
			return fs[1]
		}
	}
	return ""
}

func (f *fw) wait(iface, state string, timeout time.Duration) time.Duration {
	d, ok := netlab.Eventually(timeout, func() bool { return f.state(iface) == state })
	if !ok {
		panic(fatal{fmt.Sprintf("%s: %s did not become %s in %v:\n%s", f.name, iface, state, timeout, f.carpd.Output())})
	}
	return d
}

func demo(r *runner, bin, runbooks string) {
	fmt.Println("== Building the handbook's 28.5 lab: fw1 and fw2 on a shared LAN (em0) and WAN (em1), and a client")
	lab := netlab.New(r, bin)
	lab.Handbook285()
	mk := func(name string) *fw {
		return &fw{lab: lab, name: name, bin: bin, env: []string{
			"CARPD_SOCKET=" + filepath.Join(lab.Dir, name+".sock"),
			"CARPD_STATE_DIR=" + filepath.Join(lab.Dir, name+".state"),
			// The lab's own event socket and rules, not the host's.
			"CARPD_DEVD_PIPE=" + filepath.Join(lab.Dir, name+".devd.pipe"),
			"CARPD_DEVD_CONF=off",
			"PATH=" + filepath.Join(bin, "bsd") + ":" + bin + ":" + os.Getenv("PATH"),
		}}
	}
	fw1, fw2 := mk("fw1"), mk("fw2")
	fw1.start()
	fw2.start()

	for _, h := range []*fw{fw1, fw2} {
		b, err := os.ReadFile(filepath.Join(runbooks, "handbook-28.5-"+h.name+".sh"))
		if err != nil {
			panic(fatal{err.Error()})
		}
		fmt.Printf("\n== %s: the handbook's runbook, verbatim\n", h.name)
		for _, cmd := range joinContinuations(string(b)) {
			h.run(cmd)
		}
	}
	fw1.wait("carp0", "MASTER", 8*time.Second)
	fw1.wait("carp1", "MASTER", 8*time.Second)
	fw2.wait("carp0", "BACKUP", 2*time.Second)
	fmt.Println("\n== Both firewalls")
	fw1.run("ifconfig carp0")
	fw2.run("ifconfig carp0")
	ping(lab)

	fmt.Println("\n== Failing fw1: kill -9 of its carpd (no goodbye advert)")
	_ = fw1.carpd.Kill(syscall.SIGKILL)
	d0 := fw2.wait("carp0", "MASTER", 8*time.Second)
	fw2.wait("carp1", "MASTER", 8*time.Second)
	fmt.Printf("fw2 became MASTER %.2f s after fw1 died (advbase 1, advskew 128: master-down interval 3.50 s)\n", d0.Seconds())
	fw2.run("ifconfig carp0")
	fmt.Printf("fw1's kernel still holds 172.16.0.100: %v\n", lab.HasAddr("fw1", "172.16.0.100"))
	ping(lab)

	fmt.Println("\n== fw1's carpd restarted: its saved configuration comes back and, with preempt=1, it takes MASTER back")
	fw1.start()
	fw1.wait("carp0", "MASTER", 8*time.Second)
	fw2.wait("carp0", "BACKUP", 2*time.Second)
	fw1.run("ifconfig carp0")
	fw2.run("ifconfig carp0")

	fmt.Println("\n== 28.6 Forcing failover of the master")
	start := time.Now()
	fw1.run("ifconfig carp0 down")
	fw2.wait("carp0", "MASTER", 2*time.Second)
	fmt.Printf("fw2 became MASTER %d ms after the command started (the bow-out advert)\n", time.Since(start).Milliseconds())
	fw2.run("ifconfig carp0")
	ping(lab)
}

func ping(lab *netlab.Lab) {
	out, _, code := lab.Exec("client", nil, "ping", "-n", "-c", "1", "-W", "1", "172.16.0.100")
	res := "no answer"
	if code == 0 {
		res = "answers"
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "bytes from") {
				res = strings.TrimSpace(l)
			}
		}
	}
	fmt.Printf("client$ ping 172.16.0.100: %s\n", res)
}

// joinContinuations splits a runbook into commands, joining backslash
// continuations and skipping comments and blank lines.
func joinContinuations(s string) []string {
	var cmds []string
	cur := ""
	for _, line := range strings.Split(s, "\n") {
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\")
			continue
		}
		line = cur + line
		cur = ""
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		cmds = append(cmds, strings.Join(strings.Fields(t), " "))
	}
	return cmds
}
