package events

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/engine"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func ev(i int) engine.Event {
	typ := "BACKUP"
	if i%2 == 1 {
		typ = "MASTER"
	}
	return engine.Event{System: engine.SystemCARP, Subsystem: strconv.Itoa(i%255+1) + "@em0", Type: typ}
}

func TestDispatcherDeliversInOrderToEveryRunnerAndDrainsOnStop(t *testing.T) {
	in := make(chan engine.Event, 100)
	var got [2][]string
	r := func(i int) Runner { return RunnerFunc(func(e engine.Event) { got[i] = append(got[i], e.String()) }) }
	d := NewDispatcher(in, r(0), r(1))
	var want []string
	for i := range 50 {
		in <- ev(i)
		want = append(want, ev(i).String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already stopped: what is queued is still delivered
	d.Run(ctx)
	for i := range got {
		if !slices.Equal(got[i], want) {
			t.Fatalf("runner %d got %d events %q..., want %d in order", i, len(got[i]), got[i][:min(3, len(got[i]))], len(want))
		}
	}
}

func TestShellRunsOneAtATimeInOrder(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	logs := &syncBuffer{}
	s := NewShell(ShellOptions{Log: log.New(logs, "", 0)})
	defer s.Close()
	// Later commands are quicker: run concurrently, they would finish
	// first. The lock file shows any overlap.
	for i := range 6 {
		cmd := fmt.Sprintf(`[ -e "$1/lock" ] && echo overlap >>"$1/out"; touch "$1/lock"; sleep 0.0%d; echo "$2 $3" >>"$1/out"; rm "$1/lock"`, 6-i)
		if !s.Enqueue(Command{Cmd: cmd, Args: []string{"sh", dir, strconv.Itoa(i), "1@em0"}}) {
			t.Fatal("Enqueue refused a command with an empty queue")
		}
	}
	if !s.Enqueue(Command{Cmd: `exit 3`, What: "fails"}) {
		t.Fatal("Enqueue refused")
	}
	if !s.Enqueue(Command{Cmd: `echo "$CARP_TEST" >>` + out, Env: []string{"CARP_TEST=from-env"}}) {
		t.Fatal("Enqueue refused")
	}
	want := "0 1@em0\n1 1@em0\n2 1@em0\n3 1@em0\n4 1@em0\n5 1@em0\nfrom-env\n"
	eventually(t, 10*time.Second, "all commands ran", func() bool {
		b, _ := os.ReadFile(out)
		return len(b) >= len(want)
	})
	b, _ := os.ReadFile(out)
	if string(b) != want {
		t.Fatalf("output:\n%s\nwant:\n%s", b, want)
	}
	eventually(t, 5*time.Second, "exit statuses logged", func() bool { return strings.Count(logs.String(), "exit 0") == 7 })
	if !strings.Contains(logs.String(), `action "fails": exit 3`) {
		t.Fatalf("exit 3 not logged:\n%s", logs.String())
	}
}

func TestShellKillsAHangingCommandAndRunsTheNext(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	timeout := 300 * time.Millisecond
	s := NewShell(ShellOptions{Timeout: timeout, Log: log.New(logs, "", 0)})
	defer s.Close()
	start := time.Now()
	// The shell starts a child that would outlive it: the whole process
	// group goes.
	s.Enqueue(Command{Cmd: `sleep 1000 & echo $! >` + filepath.Join(dir, "child") + `; wait`, What: "hang"})
	s.Enqueue(Command{Cmd: `touch ` + filepath.Join(dir, "next")})
	eventually(t, 5*time.Second, "the command after the hanging one ran", func() bool {
		_, err := os.Stat(filepath.Join(dir, "next"))
		return err == nil
	})
	if took := time.Since(start); took < timeout {
		t.Fatalf("next command ran after %v, before the hanging one's timeout %v", took, timeout)
	}
	if !strings.Contains(logs.String(), `action "hang": killed after the 300ms timeout`) {
		t.Fatalf("timeout not logged:\n%s", logs.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the shell's child is killed too", func() bool {
		return dead(pid)
	})
}

func TestShellQueueOverflowIsCountedNotWaitedFor(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	s := NewShell(ShellOptions{Queue: 1, Log: log.New(logs, "", 0)})
	started := filepath.Join(dir, "started")
	s.Enqueue(Command{Cmd: `touch ` + started + `; sleep 1000`, What: "busy"})
	eventually(t, 5*time.Second, "the first command started", func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	if !s.Enqueue(Command{Cmd: "true", What: "waits"}) {
		t.Fatal("the one free place was refused")
	}
	done := make(chan bool)
	go func() {
		ok := true
		for range 100 {
			ok = ok && !s.Enqueue(Command{Cmd: "true", What: "overflow"})
		}
		done <- ok
	}()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("Enqueue accepted a command with the queue full")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Enqueue blocked on a full queue")
	}
	if got := s.Dropped(); got != 100 {
		t.Fatalf("Dropped = %d, want 100", got)
	}
	if n := strings.Count(logs.String(), "action queue full"); n != 1 {
		t.Fatalf("%d overflow log lines, want 1 (rate-limited):\n%s", n, logs.String())
	}
	s.Close() // kills "busy"
	if !strings.Contains(logs.String(), `action "busy": killed: carpd stopping`) {
		t.Fatalf("the running command was not killed on Close:\n%s", logs.String())
	}
}

func TestShellActionsRunnerQueuesWhatMatchGives(t *testing.T) {
	dir := t.TempDir()
	s := NewShell(ShellOptions{})
	defer s.Close()
	r := s.Actions(func(e engine.Event) []Command {
		if e.System != engine.SystemCARP {
			return nil
		}
		return []Command{{Cmd: `echo "$1 $2" >>"$0"`, Args: []string{filepath.Join(dir, "out"), e.Subsystem, e.Type}}}
	})
	r.Run(engine.Event{System: engine.SystemCARP, Subsystem: "1@em0", Type: "BACKUP"})
	r.Run(engine.Event{System: engine.SystemIFNET, Subsystem: "em0", Type: "LINK_UP"})
	r.Run(engine.Event{System: engine.SystemCARP, Subsystem: "1@em0", Type: "MASTER"})
	want := "1@em0 BACKUP\n1@em0 MASTER\n"
	eventually(t, 5*time.Second, "actions ran", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "out"))
		return string(b) == want
	})
}

func dialPipe(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPipeTwoReadersSeeTheSameLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devd.pipe")
	s, err := ListenPipe(path, PipeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket mode %v, want a socket with 0666 as devd makes it", fi.Mode())
	}
	a, b := dialPipe(t, path), dialPipe(t, path)
	eventually(t, 5*time.Second, "two readers connected", func() bool { return s.Readers() == 2 })
	evs := []engine.Event{
		{System: "CARP", Subsystem: "1@em0", Type: "BACKUP"},
		{System: "IFNET", Subsystem: "carp0", Type: "LINK_DOWN"},
		{System: "CARP", Subsystem: "1@em0", Type: "MASTER"},
		{System: "IFNET", Subsystem: "carp0", Type: "LINK_UP"},
	}
	for _, e := range evs {
		s.Run(e)
	}
	want := "!system=CARP subsystem=1@em0 type=BACKUP\n!system=IFNET subsystem=carp0 type=LINK_DOWN\n" +
		"!system=CARP subsystem=1@em0 type=MASTER\n!system=IFNET subsystem=carp0 type=LINK_UP\n"
	for i, c := range []*net.UnixConn{a, b} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, len(want))
		if _, err := readFull(c, buf); err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		if string(buf) != want {
			t.Fatalf("reader %d read %q, want %q", i, buf, want)
		}
	}
	// A reader that hangs up is forgotten without an event.
	a.Close()
	eventually(t, 5*time.Second, "the closed reader is removed", func() bool { return s.Readers() == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after Close: %v", err)
	}
}

func readFull(c *net.UnixConn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestPipeDropsAReaderThatNeverReadsOthersGetEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devd.pipe")
	logs := &syncBuffer{}
	s, err := ListenPipe(path, PipeOptions{Backlog: 16, Log: log.New(logs, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stuck := dialPipe(t, path) // never reads
	good := dialPipe(t, path)
	eventually(t, 5*time.Second, "two readers connected", func() bool { return s.Readers() == 2 })

	const n = 4000
	var read []string
	var count atomic.Int64
	readDone := make(chan error, 1)
	go func() {
		_ = good.SetReadDeadline(time.Now().Add(60 * time.Second))
		sc := bufio.NewScanner(good)
		for len(read) < n && sc.Scan() {
			read = append(read, sc.Text())
			count.Add(1)
		}
		readDone <- sc.Err()
	}()
	start := time.Now()
	for i := range n {
		s.Run(ev(i))
		if i%8 == 7 {
			// The good reader keeps up (the stuck one never will): the
			// next batch goes once it has read this one.
			eventually(t, 10*time.Second, "the good reader reads", func() bool { return count.Load() == int64(i+1) })
		}
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("Run took %v for %d events", took, n)
	}
	if err := <-readDone; err != nil {
		t.Fatalf("good reader: %v after %d lines", err, len(read))
	}
	for i, l := range read {
		if l != ev(i).String() {
			t.Fatalf("good reader line %d = %q, want %q", i, l, ev(i).String())
		}
	}
	if len(read) != n {
		t.Fatalf("good reader got %d lines, want %d", len(read), n)
	}
	if s.Dropped() != 1 || s.Readers() != 1 {
		t.Fatalf("dropped %d readers, %d left; want the stuck one dropped", s.Dropped(), s.Readers())
	}
	if !strings.Contains(logs.String(), "dropped") {
		t.Fatalf("drop not logged:\n%s", logs.String())
	}
	// The stuck reader's connection is closed: reading now ends in EOF
	// after what the kernel had buffered.
	_ = stuck.SetReadDeadline(time.Now().Add(5 * time.Second))
	sc := bufio.NewScanner(stuck)
	lines := 0
	for sc.Scan() {
		lines++
	}
	if sc.Err() != nil || lines >= n {
		t.Fatalf("stuck reader: %d lines then %v; want fewer than %d then EOF", lines, sc.Err(), n)
	}
}

// dead reports whether pid is gone or a zombie (killed, not yet reaped by
// whoever inherited it).
func dead(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// A reader has nothing to say: one that writes is dropped (no local user
// can keep carpd reading), and a second server never takes over a pipe
// another process serves.
func TestPipeDropsAWritingReaderAndIsNotTakenOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devd.pipe")
	s, err := ListenPipe(path, PipeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := ListenPipe(path, PipeOptions{}); err == nil || !strings.Contains(err.Error(), "another process listens on it") {
		t.Fatalf("second ListenPipe on a live pipe: %v", err)
	}
	c := dialPipe(t, path)
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Closed with the unread byte pending, the connection is reset.
	if _, err := c.Read(make([]byte, 64)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a reader that wrote was not dropped: %v", err)
	}
}

// At a stop the queued actions (carpd's own hand-over) still run, within
// the grace period; what remains after it is killed.
func TestShellCloseAfterRunsWhatIsQueued(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	s := NewShell(ShellOptions{})
	for i := range 3 {
		s.Enqueue(Command{Cmd: fmt.Sprintf("echo %d >>%s", i, out)})
	}
	s.CloseAfter(5 * time.Second)
	if b, _ := os.ReadFile(out); string(b) != "0\n1\n2\n" {
		t.Fatalf("queued actions at close ran as %q, want all three in order", b)
	}
	h := NewShell(ShellOptions{})
	h.Enqueue(Command{Cmd: "exec sleep 60"})
	start := time.Now()
	h.CloseAfter(200 * time.Millisecond)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("CloseAfter with a hanging action took %v", took)
	}
}
