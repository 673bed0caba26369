package control

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"golang.org/x/sys/unix"
)

func TestAdmissionReservesRootSlotsAndCapsEachUser(t *testing.T) {
	a := newAdmission(Limits{RootConns: 2, UserConns: 2, AllUserConns: 3})
	now := time.Now()
	for i, c := range []struct {
		uid  uint32
		want verdict
	}{
		{1000, admitted}, {1000, admitted}, {1000, uidFull}, // per-uid cap
		{1001, admitted}, {1001, usersFull}, {1002, usersFull}, // all users' cap
		{0, admitted}, {0, admitted}, {0, rootFull}, // root's own slots, free although users are full
	} {
		if got := a.admit(c.uid, now); got != c.want {
			t.Fatalf("step %d: admit(uid %d) = %d, want %d", i, c.uid, got, c.want)
		}
	}
	if root, users := a.open(); root != 2 || users != 3 {
		t.Fatalf("open = %d root, %d users; want 2, 3", root, users)
	}
	// A slot given back serves the next user, and root's next caller.
	a.release(1000)
	if got := a.admit(1002, now); got != admitted {
		t.Fatalf("after a release, admit(1002) = %d", got)
	}
	a.release(0)
	if got := a.admit(0, now); got != admitted {
		t.Fatalf("after a release, admit(0) = %d", got)
	}
	for _, uid := range []uint32{1000, 1001, 1002, 0, 0} {
		a.release(uid)
	}
	if root, users := a.open(); root != 0 || users != 0 {
		t.Fatalf("after every release: %d root, %d users", root, users)
	}
	for uid, u := range a.perUID {
		if u.open != 0 {
			t.Fatalf("after every release uid %d has %d open", uid, u.open)
		}
	}
}

func TestEachUserHasARateRootHasNone(t *testing.T) {
	lim := Limits{RootConns: 1, UserConns: 1, AllUserConns: 8, UserRate: 10}
	a := newAdmission(lim)
	now := time.Now()
	// Ten quick connections one after the other, then the rate applies.
	for i := 0; i < lim.UserRate; i++ {
		if got := a.admit(1000, now); got != admitted {
			t.Fatalf("connection %d of the burst: %d", i+1, got)
		}
		a.release(1000)
	}
	if got := a.admit(1000, now); got != rateFull {
		t.Fatalf("beyond the burst: %d, want rateFull", got)
	}
	// Another user is not affected, nor is root.
	if got := a.admit(1001, now); got != admitted {
		t.Fatalf("another user: %d", got)
	}
	for i := 0; i < 100; i++ {
		if got := a.admit(0, now); got != admitted {
			t.Fatalf("root's connection %d: %d", i+1, got)
		}
		a.release(0)
	}
	// A tenth of a second later one more is allowed, not two.
	now = now.Add(100 * time.Millisecond)
	if got := a.admit(1000, now); got != admitted {
		t.Fatalf("after 100ms: %d", got)
	}
	a.release(1000)
	if got := a.admit(1000, now); got != rateFull {
		t.Fatalf("second after 100ms: %d, want rateFull", got)
	}
}

func TestAdmissionForgetsRecoveredUsers(t *testing.T) {
	lim := Limits{RootConns: 1, UserConns: 1, AllUserConns: 4, UserRate: 10}
	a := newAdmission(lim)
	now := time.Now()
	// Many uids, each connecting once: only those whose rate has not
	// recovered are remembered, never more than maxUIDs.
	// A new uid every millisecond, whose rate takes 100ms to recover: the
	// table fills up, and is swept as they recover.
	served, turnedAway := 0, 0
	for uid := uint32(1000); uid < 5000; uid++ {
		switch got := a.admit(uid, now); got {
		case admitted:
			served++
			a.release(uid)
		case usersFull:
			turnedAway++
		default:
			t.Fatalf("uid %d: %d", uid, got)
		}
		if len(a.perUID) > a.maxUIDs() {
			t.Fatalf("%d uids remembered, bound %d", len(a.perUID), a.maxUIDs())
		}
		now = now.Add(time.Millisecond)
	}
	// About maxUIDs per 100ms are served.
	if want := 40 * a.maxUIDs() * 9 / 10; served < want || turnedAway == 0 {
		t.Fatalf("%d uids served, %d turned away; want at least %d served and some turned away", served, turnedAway, want)
	}
}

func TestRefusingAndCountingAllocateNothing(t *testing.T) {
	lim := Limits{RootConns: 1, UserConns: 1, AllUserConns: 1, UserRate: 20, LogEvery: time.Hour}
	a := newAdmission(lim)
	now := time.Now()
	a.admit(1000, now)
	r := newReporter(lim, func(string, ...any) {})
	defer r.close()
	ev := event{kind: evRefused, why: uidFull, uid: 1000}
	r.note(ev, nil) // the line that opens the window
	r.note(ev, nil) // the key of the window's counts
	if n := testing.AllocsPerRun(1000, func() {
		if a.admit(1000, now) == admitted {
			t.Fatal("admitted over the limit")
		}
		r.note(ev, nil)
	}); n != 0 {
		t.Fatalf("a refusal allocates %v times", n)
	}
}

// problems returns how many socket problems r has noted.
func (r *reporter) problems() int { return int(r.seen.Load()) }

// logRecorder collects what a server logs.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
	stuck chan struct{} // when set, writing a line waits until it is closed
}

func (l *logRecorder) logf(format string, args ...any) {
	l.mu.Lock()
	stuck := l.stuck
	l.mu.Unlock()
	if stuck != nil {
		<-stuck
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// wait returns the lines once there are at least n (the first line of a
// noisy period is written by a goroutine of its own), or fails.
func (l *logRecorder) wait(t *testing.T, n int) []string {
	t.Helper()
	if !eventually(5*time.Second, func() bool { return len(l.get()) >= n }) {
		t.Fatalf("logged %q, want at least %d lines", l.get(), n)
	}
	return l.get()
}

func (l *logRecorder) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func TestSocketProblemsAreLoggedOnceThenSummedUpPerWindow(t *testing.T) {
	var log logRecorder
	lim := DefaultLimits()
	lim.LogEvery = time.Hour // the test ends the windows itself
	r := newReporter(lim, log.logf)
	defer r.close()
	for i := 0; i < 10000; i++ {
		r.note(event{kind: evRefused, why: uidFull, uid: 1000}, nil)
	}
	r.note(event{kind: evRefused, why: usersFull, uid: 1001}, nil)
	for i := 0; i < 3; i++ {
		r.note(event{kind: evIdle, uid: 1000}, nil)
		r.note(event{kind: evReply, uid: 0}, errors.New("write: broken pipe"))
	}
	lines := log.wait(t, 1)
	if len(lines) != 1 || lines[0] != "control: refused 1 connection from uid 1000 (limit 4 per uid); further control socket problems are summed up every 1h0m0s" {
		t.Fatalf("during the storm, logged %q", lines)
	}
	r.tick() // the window ends
	lines = log.get()
	want := "control: in the last 1h0m0s: refused 9999 connections from uid 1000 (limit 4 per uid); " +
		"refused 1 connection from uid 1001 (limit 32 for all users but root); " +
		"dropped 3 connections from uid 1000 that sent no request within 500ms; " +
		"could not answer 3 connections from uid 0 (last: write: broken pipe)"
	if len(lines) != 2 || lines[1] != want {
		t.Fatalf("after the window, logged %q\nwant the summary %q", lines, want)
	}
	// A quiet window ends the noisy period without a line, and the next
	// problem is logged at once again.
	r.tick()
	if n := len(log.get()); n != 2 {
		t.Fatalf("a quiet window logged: %q", log.get()[2:])
	}
	r.note(event{kind: evIdle, uid: 1000}, nil)
	if lines = log.wait(t, 3); len(lines) != 3 || !strings.HasPrefix(lines[2], "control: dropped 1 connection from uid 1000 that sent no request within 500ms;") {
		t.Fatalf("first problem after a quiet window: %q", lines[2:])
	}
}

func TestManyUIDsStillMakeOneShortSummary(t *testing.T) {
	var log logRecorder
	lim := DefaultLimits()
	lim.LogEvery = time.Hour
	r := newReporter(lim, log.logf)
	defer r.close()
	r.note(event{kind: evRefused, why: uidFull, uid: 1}, nil)
	for uid := uint32(1000); uid < 11000; uid++ {
		r.note(event{kind: evRefused, why: uidFull, uid: uid}, nil)
	}
	r.close()
	lines := log.wait(t, 2)
	if len(lines) != 2 {
		t.Fatalf("logged %d lines, want the first and one summary", len(lines))
	}
	if !strings.HasPrefix(lines[0], "control: refused 1 connection from uid 1 ") {
		lines[0], lines[1] = lines[1], lines[0] // the first one is written asynchronously
	}
	if len(lines[1]) > 1000 || !strings.HasSuffix(lines[1], "; 9992 other socket problems") {
		t.Fatalf("summary of %d bytes: %q", len(lines[1]), lines[1])
	}
}

// requireRoot fails in CI and skips elsewhere: the real-socket tests change
// a thread's effective uid.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("needs root (CI must run this test)")
	}
	t.Skip("needs root")
}

// serveLimits starts a server with lim whose log goes to the returned
// recorder; stop closes it and waits until Serve has returned.
func serveLimits(t *testing.T, lim Limits) (path string, srv *Server, log *logRecorder, stop func()) {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	// Other users must reach the socket by name, as they reach
	// /run/carpd/carpd.sock; the test's temp dirs are 0700.
	for d := dir; d != filepath.Clean(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	path = filepath.Join(dir, "carpd.sock")
	srv, err := Listen(path, &fakeEngine{})
	if err != nil {
		t.Fatal(err)
	}
	log = &logRecorder{}
	srv.Logf = log.logf
	srv.SetLimits(lim)
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return path, srv, log, stop
}

// dialAs connects to path as uid: only this goroutine's thread takes the
// effective uid, for the connect, so the server sees that uid in the peer
// credentials as it would see another user's process.
func dialAs(t *testing.T, path string, uid int) *net.UnixConn {
	t.Helper()
	runtime.LockOSThread()
	// The raw system call changes this thread only (syscall.Setresuid
	// would change every thread of the test).
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
		runtime.UnlockOSThread()
		t.Fatalf("seteuid %d: %v", uid, e)
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), 0, ^uintptr(0)); e != 0 {
		// The thread stays locked and ends with this goroutine.
		t.Fatalf("back to euid 0: %v", e)
	}
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("dial as uid %d: %v", uid, err)
	}
	return c
}

// closedByServer waits up to d for c to be closed by the server without an
// answer (a refusal) and reports whether it was.
func closedByServer(c *net.UnixConn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && errors.Is(err, io.EOF)
}

func eventually(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

func TestRootIsServedWhileOtherUsersHoldEverySlot(t *testing.T) {
	lim := DefaultLimits()
	lim.UserIdle = time.Minute // they hold their slots for the whole test
	path, srv, _, _ := serveLimits(t, lim)
	// Nine users each try one more than their share: the first eight get
	// 4 each (32 in all), every other connection is closed at once.
	var held []*net.UnixConn
	for uid := 60001; uid <= 60009; uid++ {
		for i := 0; i < lim.UserConns+1; i++ {
			c := dialAs(t, path, uid)
			defer c.Close()
			held = append(held, c)
		}
	}
	want := len(held) - lim.AllUserConns
	if !eventually(5*time.Second, func() bool {
		_, users := srv.adm.open()
		return users == lim.AllUserConns && srv.rep.problems() == want
	}) {
		_, users := srv.adm.open()
		t.Fatalf("%d user connections served, %d refused; want %d and %d", users, srv.rep.problems(), lim.AllUserConns, want)
	}
	refused := 0
	for _, c := range held {
		if closedByServer(c, 50*time.Millisecond) {
			refused++
		}
	}
	if refused != want {
		t.Fatalf("%d of %d user connections refused, want %d", refused, len(held), want)
	}
	// Root gets in at once, again and again.
	for i := 0; i < 3*lim.RootConns; i++ {
		start := time.Now()
		resp, err := Client{Path: path, Timeout: 5 * time.Second}.Do(Request{Op: OpStatus})
		if err != nil || resp.Status == nil {
			t.Fatalf("root's status while users hold every slot: %v %+v", err, resp)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("root's status took %v", took)
		}
	}
	// A user at its limit is still refused: its slots are not freed by
	// root's traffic.
	if c := dialAs(t, path, 60001); !closedByServer(c, 5*time.Second) {
		t.Fatal("a fifth connection of uid 60001 was served")
	}
}

func TestUsersMustAskQuicklyRootMayTakeItsTime(t *testing.T) {
	lim := DefaultLimits()
	lim.UserIdle = 100 * time.Millisecond
	lim.RootIdle = time.Minute
	path, srv, log, stop := serveLimits(t, lim)
	root, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	user := dialAs(t, path, 60001)
	defer user.Close()
	// The user's silent connection is answered with an error and dropped.
	start := time.Now()
	_ = user.SetReadDeadline(time.Now().Add(5 * time.Second))
	var resp Response
	if err := readMessage(user, &resp); err != nil || resp.Code != CodeFail {
		t.Fatalf("idle user connection: %v %+v", err, resp)
	}
	took := time.Since(start)
	if took > 2*time.Second {
		t.Fatalf("idle user connection dropped after %v, limit %v", took, lim.UserIdle)
	}
	if !eventually(5*time.Second, func() bool { _, users := srv.adm.open(); return users == 0 }) {
		t.Fatal("the dropped user connection still holds its slot")
	}
	// Root's silent connection is still being served: it may send its
	// request now.
	if r, _ := srv.adm.open(); r != 1 {
		t.Fatalf("root's idle connection: %d root slots in use, want 1", r)
	}
	if err := writeMessage(root, Request{Version: Version, Op: OpStatus}); err != nil {
		t.Fatal(err)
	}
	_ = root.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := readMessage(root, &resp); err != nil || resp.Status == nil {
		t.Fatalf("root's late request: %v %+v", err, resp)
	}
	stop()
	lines := log.wait(t, 1)
	if len(lines) != 1 || !strings.Contains(lines[0], "dropped 1 connection from uid 60001 that sent no request within 100ms") {
		t.Fatalf("log: %q", lines)
	}
}

func TestARefusalFloodLogsTwoLines(t *testing.T) {
	lim := DefaultLimits()
	lim.UserIdle = time.Minute
	path, srv, log, stop := serveLimits(t, lim)
	const flood = 2000
	for i := 0; i < flood; i++ {
		c := dialAs(t, path, 60001)
		if i < lim.UserConns {
			defer c.Close() // served: held open
		} else {
			c.Close()
		}
	}
	// Every connection went through admission: 4 served, the rest refused
	// (the first logged, the others counted).
	if !eventually(10*time.Second, func() bool {
		srv.rep.mu.Lock()
		defer srv.rep.mu.Unlock()
		return srv.rep.counts[event{kind: evRefused, why: uidFull, uid: 60001}] == flood-lim.UserConns-1
	}) {
		t.Fatalf("not every connection was refused; log %q", log.get())
	}
	if lines := log.wait(t, 1); len(lines) != 1 {
		t.Fatalf("during the flood, logged %q", lines)
	}
	stop() // the window's summary is logged when the server closes
	lines := log.get()
	want := fmt.Sprintf("refused %d connections from uid 60001 (limit 4 per uid)", flood-lim.UserConns-1)
	if len(lines) != 2 || !strings.Contains(lines[1], want) {
		t.Fatalf("log %q\nwant a summary with %q", lines, want)
	}
}

func TestAStuckLogDoesNotStopAdmission(t *testing.T) {
	path, srv, log, _ := serveLimits(t, DefaultLimits())
	stuck := make(chan struct{})
	log.mu.Lock()
	log.stuck = stuck // stderr is a pipe nobody reads any more
	log.mu.Unlock()
	defer close(stuck)
	for i := 0; i < 100; i++ {
		dialAs(t, path, 60001).Close()
	}
	// At most a burst of them is served (they close at once), the rest
	// refused.
	if !eventually(5*time.Second, func() bool { return srv.rep.problems() >= 100-DefaultLimits().UserRate }) {
		t.Fatalf("only %d refusals seen", srv.rep.problems())
	}
	// The first refusal's line is stuck, yet root is served.
	resp, err := Client{Path: path, Timeout: 5 * time.Second}.Do(Request{Op: OpStatus})
	if err != nil || resp.Status == nil {
		t.Fatalf("root's status with the log stuck: %v %+v", err, resp)
	}
}

func TestClientSaysNotRunningAtOnce(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	_, err := Client{Path: filepath.Join(dir, "none.sock")}.Do(Request{Op: OpStatus})
	if !errors.Is(err, ErrNoEngine) {
		t.Fatalf("no socket file: %v", err)
	}
	// A socket file nobody listens on.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := (Client{Path: stale}).Do(Request{Op: OpStatus}); !errors.Is(err, ErrNoEngine) {
		t.Fatalf("stale socket file: %v", err)
	}
	if took := time.Since(start); took > DialRetry/2 {
		t.Fatalf("saying carpd is not running took %v", took)
	}
}

// fullQueue returns a Unix socket at path whose listen queue holds one
// connection, already filled, and nobody accepting yet.
func fullQueue(t *testing.T, path string) (fd int, fillers []net.Conn) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		c, err := net.Dial("unix", path)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil || i > 10 {
			t.Fatalf("filling the listen queue: %d connections, then %v", i, err)
		}
		fillers = append(fillers, c)
		t.Cleanup(func() { c.Close() })
	}
	return fd, fillers
}

func TestClientRetriesAFullListenQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.sock")
	fd, _ := fullQueue(t, path)
	f := os.NewFile(uintptr(fd), "busy") // f owns fd from here on
	ln, err := net.FileListener(f)
	f.Close() // FileListener holds its own copy
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The server is busy for 200ms, then accepts everything and answers.
	const busy = 200 * time.Millisecond
	time.AfterFunc(busy, func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				var req Request
				if readMessage(c, &req) == nil {
					_ = writeMessage(c, Response{Version: Version, Status: &api.Status{}})
				}
			}()
		}
	})
	start := time.Now()
	resp, err := Client{Path: path, Timeout: 5 * time.Second}.Do(Request{Op: OpStatus})
	took := time.Since(start)
	if err != nil || resp.Status == nil {
		t.Fatalf("status through a full listen queue: %v %+v", err, resp)
	}
	if took < busy/2 || took > DialRetry {
		t.Fatalf("answered after %v: not retried while the queue was full (%v busy, retry %v)", took, busy, DialRetry)
	}
}

func TestClientGivesUpOnAQueueThatStaysFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stuck.sock")
	fd, _ := fullQueue(t, path)
	defer unix.Close(fd)
	start := time.Now()
	_, err := Client{Path: path, Timeout: 5 * time.Second}.Do(Request{Op: OpStatus})
	took := time.Since(start)
	if !errors.Is(err, unix.EAGAIN) || errors.Is(err, ErrNoEngine) {
		t.Fatalf("a queue that stays full: %v", err)
	}
	if took < DialRetry*9/10 || took > 2*DialRetry {
		t.Fatalf("gave up after %v, want about %v", took, DialRetry)
	}
}

// Root has a socket of its own (mode 0600) that no other user can reach, so
// whatever they do to the shared socket, root's commands go in there.
func TestRootHasASocketOfItsOwn(t *testing.T) {
	path, _, _, _ := serveLimits(t, DefaultLimits())
	fi, err := os.Stat(RootSocket(path))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v, want a socket with mode 0600", RootSocket(path), fi.Mode())
	}
	// Another user cannot even connect to it.
	runtime.LockOSThread()
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), 65534, ^uintptr(0)); e != 0 {
		runtime.UnlockOSThread()
		t.Fatalf("seteuid: %v", e)
	}
	_, derr := net.DialUnix("unix", nil, &net.UnixAddr{Name: RootSocket(path), Net: "unix"})
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), 0, ^uintptr(0)); e != 0 {
		t.Fatalf("back to euid 0: %v", e)
	}
	runtime.UnlockOSThread()
	if !errors.Is(derr, unix.EACCES) {
		t.Fatalf("uid 65534 connecting to root's socket: %v, want EACCES", derr)
	}
	// Root's client uses it: with the shared socket's name gone, root is
	// still served.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	resp, err := Client{Path: path, Timeout: 2 * time.Second}.Do(Request{Op: OpStatus})
	if err != nil || resp.Status == nil {
		t.Fatalf("root's status without the shared socket: %v %+v", err, resp)
	}
}

// The shared socket takes at most AcceptRate connections a second: a flood
// waits in (and then fills) the kernel's listen queue instead of costing
// carpd a system call each, while root goes in through its own socket at once.
func TestSharedSocketAcceptRateIsCappedRootIsNot(t *testing.T) {
	lim := DefaultLimits()
	lim.AcceptRate = 50
	path, _, _, _ := serveLimits(t, lim)
	var conns []*net.UnixConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for range 300 {
		conns = append(conns, dialAs(t, path, 65534))
	}
	// Poll until the server has taken (and refused) some of the flood: by
	// then at most 50/10 (burst) + 50 a second connections were taken; the
	// others still wait in the queue, not refused yet.
	taken := map[int]bool{}
	for deadline := start.Add(5 * time.Second); len(taken) == 0 && time.Now().Before(deadline); {
		for i, c := range conns {
			if taken[i] {
				continue
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if n, err := c.Read(make([]byte, 1)); n == 0 && errors.Is(err, io.EOF) {
				taken[i] = true
			}
		}
	}
	refused := len(taken)
	elapsed := time.Since(start)
	if max := int(float64(lim.AcceptRate)*elapsed.Seconds()) + lim.AcceptRate/10 + 1; refused > max {
		t.Errorf("%d connections taken and refused in %v, cap %d/s allows %d", refused, elapsed, lim.AcceptRate, max)
	}
	if refused == 0 {
		t.Error("no connection of the flood was taken at all")
	}
	t0 := time.Now()
	resp, err := Client{Path: path, Timeout: 2 * time.Second}.Do(Request{Op: OpStatus})
	if took := time.Since(t0); err != nil || resp.Status == nil || took > 100*time.Millisecond {
		t.Fatalf("root's status behind the flood: %v in %v", err, took)
	}
}

// With the socket in a directory others can write to, another user may
// bind root's socket name first: root's client must not send it anything
// (requests carry keys) and goes to carpd's shared socket instead.
func TestRootClientIgnoresASquattedRootSocket(t *testing.T) {
	path, _, _, _ := serveLimits(t, DefaultLimits())
	dir := filepath.Dir(path)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(RootSocket(path)); err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), 65534, ^uintptr(0)); e != 0 {
		runtime.UnlockOSThread()
		t.Fatalf("seteuid: %v", e)
	}
	squat, err := net.ListenUnix("unix", &net.UnixAddr{Name: RootSocket(path), Net: "unix"})
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), 0, ^uintptr(0)); e != 0 {
		t.Fatalf("back to euid 0: %v", e)
	}
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	got := make(chan int, 16)
	go func() {
		for {
			c, err := squat.Accept()
			if err != nil {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, _ := io.Copy(io.Discard, c)
			got <- int(n)
			c.Close()
		}
	}()
	resp, err := Client{Path: path, Timeout: 2 * time.Second}.Do(Request{Op: OpStatus, ShowKeys: true})
	if err != nil || resp.Status == nil {
		t.Fatalf("root's status with a squatted root socket: %v %+v", err, resp)
	}
	select {
	case n := <-got:
		if n != 0 {
			t.Fatalf("the squatter received %d bytes", n)
		}
	case <-time.After(time.Second):
		// It never even connected: fine too.
	}
}
