package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// NetnsLock is the abstract Unix socket that one carpd per network namespace
// binds. Abstract names belong to the network namespace and vanish with the
// process, so a killed engine never leaves it behind. Two engines in one
// namespace would fight over the same links and kernel settings whatever
// their state directories and sockets.
const NetnsLock = "@bsdcarp/engine"

// locks are what makes this process the only engine of its state directory,
// its control socket and its network namespace. They are taken before
// anything in the kernel is touched and held until the process exits.
type locks struct {
	files []*os.File
	netns *net.UnixListener
	// Warnings are worth a log line but do not stop carpd (the pid could
	// not be recorded on a full or read-only state directory).
	Warnings []string
}

// release drops every lock (the kernel would at exit anyway).
func (l *locks) release() {
	for _, f := range l.files {
		f.Close()
	}
	if l.netns != nil {
		l.netns.Close()
	}
}

// takeLocks takes, in this order, the state directory's lock, the control
// socket's lock and the network namespace's lock (the abstract socket netns,
// NetnsLock but in tests), and checks that nothing answers on the socket.
// The error names what is taken, in one line.
func takeLocks(stateDir, socket, netns string) (*locks, error) {
	l := &locks{}
	ok := false
	defer func() {
		if !ok {
			l.release()
		}
	}()
	if stateDir != "" {
		if err := makeStateDir(stateDir); err != nil {
			return nil, err
		}
		f, warn, err := lockStateDir(stateDir)
		if err != nil {
			return nil, err
		}
		l.files = append(l.files, f)
		if warn != "" {
			l.Warnings = append(l.Warnings, warn)
		}
	}
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	f, err := lockFile(socket+".lock", "control socket "+socket)
	if err != nil {
		return nil, err
	}
	l.files = append(l.files, f)
	if err := socketFree(socket); err != nil {
		return nil, err
	}
	if l.netns, err = lockNetns(netns); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// makeStateDir creates the state directory with mode 0700; directories above
// it that do not exist yet get 0755, since /run/carpd also holds the control
// socket that every user may reach.
func makeStateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}

// lockStateDir takes an exclusive flock on the state directory itself, which
// works on a full or read-only file system too, and records our pid in
// dir/lock for the message of a second carpd. Failing to record it is only
// a warning.
func lockStateDir(dir string) (*os.File, string, error) {
	what := "state directory " + dir
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, "", fmt.Errorf("lock %s: %w", what, err)
	}
	pidPath := filepath.Join(dir, "lock")
	if err := flockNB(f, what, pidPath); err != nil {
		f.Close()
		return nil, "", err
	}
	if err := writePid(pidPath); err != nil {
		return f, fmt.Sprintf("%s: cannot record our pid: %v", what, err), nil
	}
	return f, "", nil
}

// lockFile takes an exclusive flock on path (created 0600: whoever can open
// it can lock it) and writes our pid into it. what names the resource in the
// error when another process holds it.
func lockFile(path, what string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	if err := flockNB(f, what, path); err != nil {
		f.Close()
		return nil, err
	}
	if err := writePid(path); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	return f, nil
}

// flockNB takes an exclusive flock on f without waiting. When another
// process holds it, the error names that process by the pid it recorded in
// pidPath.
func flockNB(f *os.File, what, pidPath string) error {
	var err error
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EWOULDBLOCK):
		if pid := readPid(pidPath); pid > 0 {
			return fmt.Errorf("another carpd (pid %d) uses %s", pid, what)
		}
		return fmt.Errorf("another carpd uses %s", what)
	default:
		return fmt.Errorf("lock %s: %w", what, err)
	}
}

// writePid records our pid in path (mode 0600), in place: the file may be
// the one we hold the lock on.
func writePid(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteAt(pid, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readPid reads the pid a lock holder recorded (0 if none).
func readPid(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return 0
	}
	return pid
}

// socketFree reports an error when something answers on the control socket:
// an engine that does not take the socket's lock (an older carpd) must not
// be run over either.
func socketFree(path string) error {
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("another carpd answers on control socket %s", path)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return nil
	default:
		return fmt.Errorf("control socket %s: %w", path, err)
	}
}

// lockNetns binds the abstract socket name. When it is taken, the holder's
// pid and uid come from the kernel (SO_PEERCRED of a connection to it).
func lockNetns(name string) (*net.UnixListener, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err == nil {
		return ln, nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("lock network namespace (%s): %w", name, err)
	}
	cred, cerr := holder(name)
	switch {
	case cerr != nil:
		return nil, fmt.Errorf("another carpd runs in this network namespace (%s is taken)", name)
	case cred.Uid != 0 && int(cred.Uid) != os.Geteuid():
		return nil, fmt.Errorf("pid %d of uid %d holds %s, which one carpd per network namespace binds", cred.Pid, cred.Uid, name)
	default:
		return nil, fmt.Errorf("another carpd (pid %d) runs in this network namespace", cred.Pid)
	}
}

// holder returns the credentials of the process listening on an abstract
// Unix socket.
func holder(name string) (*unix.Ucred, error) {
	c, err := net.DialTimeout("unix", name, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, gerr
}
