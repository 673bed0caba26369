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

// lockPatience is how long a lock that is taken is tried again before
// carpd gives up on it.
const lockPatience = 100 * time.Millisecond

// lockPoll is how often a held lock is tried again within lockPatience.
const lockPoll = 10 * time.Millisecond

// probeWait bounds the dial that checks whether something answers on the
// control socket: a live carpd accepts at once.
const probeWait = time.Second

// NetnsLockDir holds one lock file per network namespace, named after the
// namespace's inode. It is root's alone (mode 0700 under /run, which a
// reboot clears): no other user can create or hold a lock there, so no local
// user can keep carpd from starting. Two engines in one namespace would
// fight over the same links and kernel settings whatever their state
// directories and sockets.
const NetnsLockDir = "/run/carpd/netns"

// netnsLock names the lock of one network namespace.
type netnsLock struct {
	Path string // the lock file
	Name string // how messages name the namespace: net:[4026531840]
}

// currentNetns returns the lock of the calling process's network namespace.
func currentNetns(dir string) (netnsLock, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return netnsLock{}, fmt.Errorf("network namespace: %w", err)
	}
	return netnsLock{
		Path: filepath.Join(dir, fmt.Sprintf("%d-%d.lock", st.Dev, st.Ino)),
		Name: fmt.Sprintf("net:[%d]", st.Ino),
	}, nil
}

// locks are what makes this process the only engine of its state directory,
// its control socket and its network namespace. They are taken before
// anything in the kernel is touched and held until the process exits.
type locks struct {
	files []*os.File
	// remove is the lock file release deletes (the namespace's, which would
	// otherwise pile up in /run, one per namespace ever used).
	remove string
	// Warnings are worth a log line but do not stop carpd (the pid could
	// not be recorded on a full or read-only state directory).
	Warnings []string
}

// release drops every lock (the kernel would at exit anyway). The
// namespace's lock file is removed while still held; lockFile checks after
// locking that its file is still the one at the path, so a carpd starting
// right now cannot end up holding a removed file.
func (l *locks) release() {
	if l.remove != "" && len(l.files) > 0 {
		os.Remove(l.remove)
	}
	for _, f := range l.files {
		f.Close()
	}
}

// takeLocks takes, in this order, the state directory's lock, the control
// socket's lock and the network namespace's lock (see currentNetns; its
// directory is created 0700), and checks that nothing answers on the
// socket. The error names what is taken, in one line.
func takeLocks(stateDir, socket string, netns netnsLock) (*locks, error) {
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
	if err := makePrivateDir(filepath.Dir(netns.Path)); err != nil {
		return nil, fmt.Errorf("network namespace lock directory: %w", err)
	}
	if f, err = lockFile(netns.Path, "network namespace "+netns.Name); err != nil {
		return nil, err
	}
	l.files = append(l.files, f)
	l.remove = netns.Path
	sweepStale(filepath.Dir(netns.Path))
	ok = true
	return l, nil
}

// makeStateDir creates the state directory with mode 0700; directories above
// it that do not exist yet get 0755, since /run/carpd also holds the control
// socket that every user may reach.
func makeStateDir(dir string) error {
	if err := makePrivateDir(dir); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}

// makePrivateDir creates dir with mode 0700 and the missing directories
// above it with 0755.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// sweepStale removes the lock files of engines that were killed (nothing
// holds their lock any more), so that /run does not collect one per
// network namespace ever used. Best effort.
func sweepStale(dir string) {
	names, err := filepath.Glob(filepath.Join(dir, "*.lock"))
	if err != nil {
		return
	}
	for _, path := range names {
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil && samePath(f, path) {
			os.Remove(path)
		}
		f.Close()
	}
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
	for {
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
		// The holder before us may have removed the file between our open
		// and our lock: then we hold a lock nobody else can see. Try again.
		if !samePath(f, path) {
			f.Close()
			continue
		}
		if err := writePid(path); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", what, err)
		}
		return f, nil
	}
}

// samePath reports whether path still names the open file f.
func samePath(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Lstat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// flockNB takes an exclusive flock on f without waiting. When another
// process holds it, the error names that process by the pid it recorded in
// pidPath.
func flockNB(f *os.File, what, pidPath string) error {
	var err error
	// A starting carpd's sweepStale holds a dead engine's lock for an
	// instant: a lock still taken after lockPatience is really held.
	deadline := time.Now().Add(lockPatience)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			break
		}
		time.Sleep(lockPoll)
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
	c, err := net.DialTimeout("unix", path, probeWait)
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
