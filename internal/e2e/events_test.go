package e2e

import (
	"bufio"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// pipeReader follows a carpd's devd.pipe as `nc -U` would.
type pipeReader struct {
	conn  net.Conn
	mu    sync.Mutex
	lines []string
	err   error
	done  chan struct{}
}

func readPipe(t *testing.T, path string) *pipeReader {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("connect to %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	r := &pipeReader{conn: c, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			r.mu.Unlock()
		}
		r.mu.Lock()
		r.err = sc.Err()
		r.mu.Unlock()
	}()
	return r
}

func (r *pipeReader) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

// waitLine waits for line to be read, at or after index from, and returns
// its index.
func (r *pipeReader) waitLine(t *testing.T, from int, line string, timeout time.Duration) int {
	t.Helper()
	at := -1
	if _, ok := netlab.Eventually(timeout, func() bool {
		ls := r.snapshot()
		for i := from; i < len(ls); i++ {
			if ls[i] == line {
				at = i
				return true
			}
		}
		return false
	}); !ok {
		t.Fatalf("%q not read from the devd pipe within %v; read:\n%s", line, timeout, strings.Join(r.snapshot(), "\n"))
	}
	return at
}

// Two hosts of the 28.5 handbook lab: a reader of fw2's devd.pipe sees the
// events of every transition in order, the FreeBSD 10 CARP form and the
// FreeBSD <= 9 IFNET form of the cloned carp0, while a reader that never
// reads is dropped and delays nothing.
func TestDevdPipeEventsOfAFailover(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Handbook285()
	fw1, fw2 := labHost(lab, "fw1"), labHost(lab, "fw2")
	fw1.startCarpd(t)
	fw2.startCarpd(t)
	good := readPipe(t, fw2.devdPipe())
	stuck, err := net.Dial("unix", fw2.devdPipe()) // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()

	fw1.mustSh(t, runbook(t, "handbook-28.5-fw1.sh"))
	fw1.waitState(t, "carp0", "MASTER", 6*time.Second)
	fw1.waitState(t, "carp1", "MASTER", 6*time.Second)
	fw2.mustSh(t, runbook(t, "handbook-28.5-fw2.sh"))
	fw2.waitState(t, "carp0", "BACKUP", 2*time.Second)
	fw2.waitState(t, "carp1", "BACKUP", 2*time.Second)
	i := good.waitLine(t, 0, "!system=CARP subsystem=1@em0 type=BACKUP", 5*time.Second)
	good.waitLine(t, i, "!system=IFNET subsystem=carp0 type=LINK_DOWN", 5*time.Second)
	good.waitLine(t, 0, "!system=CARP subsystem=2@em1 type=BACKUP", 5*time.Second)

	// Enough events to fill the stuck reader's socket buffer and backlog:
	// carp1 flapped on fw2, the BACKUP (INIT and BACKUP each time).
	const flaps = 200
	var script strings.Builder
	for range flaps {
		script.WriteString("ifconfig carp1 down; ifconfig carp1 up\n")
	}
	fw2.mustSh(t, script.String())
	fw2.waitState(t, "carp1", "BACKUP", 2*time.Second)
	if _, ok := netlab.Eventually(10*time.Second, func() bool {
		return strings.Contains(fw2.log(), "devd pipe") && strings.Contains(fw2.log(), "dropped")
	}); !ok {
		t.Fatalf("the reader that never reads was not dropped:\n%s", lastLines(fw2.log(), 20))
	}
	if _, ok := netlab.Eventually(5*time.Second, func() bool {
		n := 0
		for _, l := range good.snapshot() {
			if l == "!system=CARP subsystem=2@em1 type=INIT" {
				n++
			}
		}
		return n == flaps
	}); !ok {
		t.Fatalf("the reading reader did not get all %d INIT events of carp1", flaps)
	}

	// fw1's engine dies: fw2 takes over within the protocol's bound, with
	// a second reader that never reads connected (not yet dropped: it
	// has room, and nobody waits for it either way).
	hung, err := net.Dial("unix", fw2.devdPipe())
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	mark := len(good.snapshot())
	start := time.Now()
	if err := fw1.carpd.Kill(syscall.SIGKILL); err == nil {
		t.Fatal("carpd exited cleanly after SIGKILL?")
	}
	limit := carp.MasterDown(1, 128) + 100*time.Millisecond
	fw2.waitState(t, "carp0", "MASTER", limit+3*time.Second)
	if d := fw2.transitionAt(t, "1@em0", "MASTER").Sub(start); d > limit {
		t.Errorf("failover took %v with a reader that never reads on the pipe, over %v", d, limit)
	} else {
		t.Logf("fw2 MASTER of carp0 %v after the kill (limit %v)", d, limit)
	}
	j := good.waitLine(t, mark, "!system=CARP subsystem=1@em0 type=MASTER", 5*time.Second)
	good.waitLine(t, j, "!system=IFNET subsystem=carp0 type=LINK_UP", 5*time.Second)
	good.waitLine(t, mark, "!system=CARP subsystem=2@em1 type=MASTER", 5*time.Second)
	good.waitLine(t, mark, "!system=IFNET subsystem=carp1 type=LINK_UP", 5*time.Second)

	// The whole story of 1@em0, in order, and nothing malformed.
	var story []string
	for _, l := range good.snapshot() {
		if !strings.HasPrefix(l, "!system=") || len(strings.Fields(l)) != 3 {
			t.Errorf("malformed line %q", l)
		}
		if strings.Contains(l, "subsystem=1@em0 ") {
			story = append(story, l)
		}
	}
	want := []string{"!system=CARP subsystem=1@em0 type=BACKUP", "!system=CARP subsystem=1@em0 type=MASTER"}
	if !slices.Equal(story, want) {
		t.Errorf("events of 1@em0 on fw2:\n%s\nwant:\n%s", strings.Join(story, "\n"), strings.Join(want, "\n"))
	}

	// The stuck reader's connection was closed: what the kernel had
	// buffered, then EOF.
	_ = stuck.SetReadDeadline(time.Now().Add(5 * time.Second))
	sc := bufio.NewScanner(stuck)
	n := 0
	for sc.Scan() {
		n++
	}
	if sc.Err() != nil {
		t.Errorf("the dropped reader's connection is not closed: %v after %d lines", sc.Err(), n)
	}
	if total := len(good.snapshot()); n >= total {
		t.Errorf("the dropped reader read %d lines, the other %d", n, total)
	}
}
