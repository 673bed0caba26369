package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// testNetns is an abstract socket name of this test process only, so that
// the test never meets a real carpd of the host's namespace.
func testNetns(t *testing.T) string {
	return fmt.Sprintf("@bsdcarp-test/%d/%s", os.Getpid(), t.Name())
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
		name            string
		state, sock, ns string
		want            string
	}{
		{"same everything", state, sock, ns, "another carpd (pid " + pid + ") uses state directory " + state},
		{"same socket", filepath.Join(dir, "other"), sock, ns, "another carpd (pid " + pid + ") uses control socket " + sock},
		{"same network namespace", filepath.Join(dir, "other"), filepath.Join(dir, "b.sock"), ns,
			"another carpd (pid " + pid + ") runs in this network namespace"},
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
	l, err := takeLocks(state, filepath.Join(dir, "b.sock"), testNetns(t)+"-b")
	if err == nil {
		l.release()
		t.Fatal("a second engine got the state directory")
	}
	if want := "another carpd uses state directory " + state; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}
