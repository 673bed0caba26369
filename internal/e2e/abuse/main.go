// Command abuse is a test-only hostile local user of carpd's control socket:
// started as root, it drops to an unprivileged uid and gid, then keeps
// -conns connections open that never send a request; each one that carpd
// closes is dialled again at once. It stops by itself after -for (and exits
// hard a little later should anything hang), then prints what it did.
//
// Like a user who logs in, it runs in a session of its own: it re-executes
// itself with setsid(2), so the scheduler's autogroups weigh its CPU
// against root's commands as they would on a real host, instead of charging
// it to the test's session.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	socket := flag.String("socket", "", "control socket path")
	uid := flag.Int("uid", 65534, "user id to run as")
	gid := flag.Int("gid", 65534, "group id to run as")
	conns := flag.Int("conns", 1000, "connections held open at once")
	dur := flag.Duration("for", 15*time.Second, "how long to churn")
	flag.Parse()
	if *socket == "" {
		fmt.Fprintln(os.Stderr, "abuse: -socket is required")
		os.Exit(2)
	}
	if os.Getenv(childEnv) == "" {
		os.Exit(inNewSession())
	}
	if err := drop(*uid, *gid); err != nil {
		fmt.Fprintf(os.Stderr, "abuse: %v\n", err)
		os.Exit(1)
	}
	// A hard stop in case a dial or read ignores its deadline.
	time.AfterFunc(*dur+3*time.Second, func() {
		fmt.Fprintln(os.Stderr, "abuse: hard stop")
		os.Exit(3)
	})
	end := time.Now().Add(*dur)
	var dials, dialErrs, closed atomic.Int64
	var wg sync.WaitGroup
	fmt.Printf("abuse: churning %d connections as uid %d for %v\n", *conns, os.Getuid(), *dur)
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for time.Now().Before(end) {
				c, err := net.DialTimeout("unix", *socket, time.Until(end))
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				dials.Add(1)
				// Hold it idle until carpd drops it (or the run ends).
				_ = c.SetReadDeadline(end)
				for {
					if _, err := c.Read(buf); err != nil {
						if !errors.Is(err, os.ErrDeadlineExceeded) {
							closed.Add(1)
						}
						break
					}
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("abuse: done: dials=%d dial_errors=%d closed_by_carpd=%d\n", dials.Load(), dialErrs.Load(), closed.Load())
}

// childEnv marks the re-executed child that does the work.
const childEnv = "BSDCARP_ABUSE_CHILD"

// inNewSession runs this command again, with the same arguments, as the
// leader of a new session, and returns its exit status. The child is killed
// when this process dies (the test kills this one at cleanup).
func inNewSession() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "abuse: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "abuse: %v\n", err)
		return 1
	}
	return 0
}

// drop switches every thread to uid and gid with no supplementary groups.
func drop(uid, gid int) error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	if os.Getuid() != uid || os.Geteuid() != uid {
		return fmt.Errorf("still uid %d/%d after setuid %d", os.Getuid(), os.Geteuid(), uid)
	}
	return nil
}
