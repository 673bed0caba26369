package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// testNetns is a namespace lock of this test only, so that the test never
// meets a real carpd of the host's namespace.
func testNetns(t *testing.T) netnsLock {
	ns, err := currentNetns(filepath.Join(t.TempDir(), "netns"))
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestLocksRefuseASecondEngineNamingWhatIsTaken(t *testing.T) {
	dir := t.TempDir()
	state, sock, ns := filepath.Join(dir, "run", "carpd", "state"), filepath.Join(dir, "a.sock"), testNetns(t)
	first, err := takeLocks(state, sock, ns)
	if err != nil {
		t.Fatal(err)
	}
	defer first.release()
	// The state directory is private; the one above it holds sockets too.
	for path, want := range map[string]os.FileMode{state: 0o700, filepath.Dir(state): 0o755} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	b, err := os.ReadFile(filepath.Join(state, "lock"))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("state lock holds %q (%v), want our pid %d", b, err, os.Getpid())
	}
	pid := strconv.Itoa(os.Getpid())
	for _, tt := range []struct {
		name        string
		state, sock string
		ns          netnsLock
		want        string
	}{
		{"same everything", state, sock, ns, "another carpd (pid " + pid + ") uses state directory " + state},
		{"same socket", filepath.Join(dir, "other"), sock, ns, "another carpd (pid " + pid + ") uses control socket " + sock},
		{"same network namespace", filepath.Join(dir, "other"), filepath.Join(dir, "b.sock"), ns,
			"another carpd (pid " + pid + ") uses network namespace " + ns.Name},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := takeLocks(tt.state, tt.sock, tt.ns)
			if err == nil {
				l.release()
				t.Fatal("a second engine got the locks")
			}
			if err.Error() != tt.want {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
		})
	}
	// Every lock a refused start took on its way is free again.
	first.release()
	again, err := takeLocks(filepath.Join(dir, "other"), filepath.Join(dir, "b.sock"), ns)
	if err != nil {
		t.Fatalf("locks not released: %v", err)
	}
	again.release()
}

func TestLocksRefuseASocketAnEngineAnswersOn(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "c.sock")
	// An engine that took no lock (an older carpd) listens on the socket.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l, err := takeLocks(filepath.Join(dir, "state"), sock, testNetns(t))
	if err == nil {
		l.release()
		t.Fatal("took over a socket that answers")
	}
	if want := "another carpd answers on control socket " + sock; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	// A socket file nothing answers on is stale: fine.
	ln.Close()
	if err := os.WriteFile(sock, nil, 0o600); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	l, err = takeLocks(filepath.Join(dir, "state"), sock, testNetns(t))
	if err != nil {
		t.Fatalf("stale socket file refused: %v", err)
	}
	l.release()
}

// The state directory's lock is a flock on the directory itself, so a full or
// read-only state directory (here: a lock file that cannot be written) still
// keeps a second engine out; only the pid is missing from the message.
func TestStateDirLockNeedsNoWritableFile(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(filepath.Join(state, "lock"), 0o700); err != nil {
		t.Fatal(err)
	}
	first, err := takeLocks(state, filepath.Join(dir, "a.sock"), testNetns(t))
	if err != nil {
		t.Fatal(err)
	}
	defer first.release()
	if len(first.Warnings) != 1 || !strings.Contains(first.Warnings[0], "cannot record our pid") {
		t.Errorf("warnings %q, want one about the pid", first.Warnings)
	}
	l, err := takeLocks(state, filepath.Join(dir, "b.sock"), testNetns(t))
	if err == nil {
		l.release()
		t.Fatal("a second engine got the state directory")
	}
	if want := "another carpd uses state directory " + state; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

// The namespace lock lives in a directory only root can enter: a local user
// cannot hold it and keep carpd from starting (an abstract socket name,
// which any user may bind, could be squatted).
func TestNetnsLockIsRootsAlone(t *testing.T) {
	ns := testNetns(t)
	l, err := takeLocks(filepath.Join(t.TempDir(), "state"), filepath.Join(t.TempDir(), "a.sock"), ns)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	for path, want := range map[string]os.FileMode{filepath.Dir(ns.Path): 0o700, ns.Path: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	if want := "/run/carpd/netns"; NetnsLockDir != want {
		t.Errorf("NetnsLockDir = %s, want %s (under /run: a reboot clears it)", NetnsLockDir, want)
	}
}

// Lock files of killed engines do not pile up in /run: the next start
// removes those nobody holds, and a clean stop removes its own.
func TestStaleNetnsLocksAreSwept(t *testing.T) {
	ns := testNetns(t)
	if err := makePrivateDir(filepath.Dir(ns.Path)); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(filepath.Dir(ns.Path), "4-1.lock")
	if err := os.WriteFile(stale, []byte("99999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := takeLocks(filepath.Join(t.TempDir(), "state"), filepath.Join(t.TempDir(), "a.sock"), ns)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale lock %s still there (%v)", stale, err)
	}
	if _, err := os.Stat(ns.Path); err != nil {
		t.Errorf("our own lock: %v", err)
	}
	l.release()
	if _, err := os.Stat(ns.Path); !os.IsNotExist(err) {
		t.Errorf("lock %s left after release (%v)", ns.Path, err)
	}
}
