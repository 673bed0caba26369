package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// fullDisk stands in for writeAtomic while the state directory is full: it
// fails as a write to a full file system does, and counts the attempts.
type fullDisk struct {
	mu       sync.Mutex
	full     bool
	attempts int
}

func (d *fullDisk) write(dir, name string, b []byte) error {
	d.mu.Lock()
	full := d.full
	d.attempts++
	d.mu.Unlock()
	if full {
		err := &fs.PathError{Op: "write", Path: filepath.Join(dir, "."+name+".123456"), Err: syscall.ENOSPC}
		return fmt.Errorf("engine: save %s: %w", name, err)
	}
	return writeAtomic(dir, name, b)
}

func (d *fullDisk) set(full bool) {
	d.mu.Lock()
	d.full = full
	d.mu.Unlock()
}

func (d *fullDisk) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.attempts
}

// useWriter swaps the engine's config.json writer on its own goroutine.
func useWriter(t *testing.T, n *node, w func(dir, name string, b []byte) error) {
	t.Helper()
	if err := n.e.call(context.Background(), func() { n.e.save.write = w }); err != nil {
		t.Fatal(err)
	}
}

func TestFailoverCommandsTakeEffectWhenTheStateDirIsFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		seg := memkernel.NewSegment()
		fw1 := newNode(t, seg, "10.0.0.2/24", dir)
		fw2 := newNode(t, seg, "10.0.0.3/24", "")
		defer fw2.stop(t)
		runbook284(t, fw1, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		runbook284(t, fw2, 100)
		synctest.Wait()
		if fw1.state(t, "carp0") != "MASTER" || fw2.state(t, "carp0") != "BACKUP" {
			t.Fatalf("before: fw1 %s, fw2 %s", fw1.state(t, "carp0"), fw2.state(t, "carp0"))
		}
		file := filepath.Join(dir, configFile)
		saved, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		disk := &fullDisk{full: true}
		useWriter(t, fw1, disk.write)

		checkCommandsWhileFull(t, fw1, fw2, file)
		checkRetriesWhileFull(t, fw1, disk, file, saved)

		// Space is back: the next retry saves what is in effect.
		disk.set(false)
		time.Sleep(saveRetry)
		synctest.Wait()
		if !strings.Contains(fw1.logs.String(), "carpd: configuration saved to "+file) {
			t.Errorf("no 'configuration saved' log line:\n%s", fw1.logs.String())
		}
		before := disk.count()
		time.Sleep(3 * saveRetry)
		synctest.Wait()
		if got := disk.count() - before; got != 0 {
			t.Errorf("%d save attempts after the save succeeded, want none", got)
		}
		fw1.stop(t)
		m := startNode(t, fw1.k, dir)
		defer m.stop(t)
		st, _ := m.e.Status(context.Background(), api.StatusQuery{})
		if len(st.Clones) != 1 || st.Clones[0].Up {
			t.Errorf("restarted from the retried save: clones %+v, want carp0 down", st.Clones)
		}
		if got := knobValue(st, api.SysctlPrefix+"demotion"); got != 240 {
			t.Errorf("restarted from the retried save: demotion %d, want 240", got)
		}
	})
}

// checkCommandsWhileFull: with fw1's state directory (config.json is
// file) full, "ifconfig carp0 down" and a demotion take effect at once
// (fw2 takes carp0 over), each with the warning that the configuration is
// not saved, and a forced state gives the warning again.
func checkCommandsWhileFull(t *testing.T, fw1, fw2 *node, file string) {
	// ifconfig carp0 down: refused today; now in effect, with a warning.
	err := fw1.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpDown}}})
	var se *api.SaveError
	if !errors.As(err, &se) {
		t.Fatalf("ifconfig carp0 down with a full state dir: err = %v, want a *api.SaveError", err)
	}
	want := "configuration not saved (will retry): write " + file + ": no space left on device"
	if err.Error() != want {
		t.Errorf("warning = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("warning does not unwrap to ENOSPC: %v", err)
	}
	synctest.Wait()
	if got := fw2.state(t, "carp0"); got != "MASTER" {
		t.Fatalf("fw2 after fw1's carp0 down = %s, want MASTER at once (bow-out)", got)
	}
	if got := fw1.state(t, "carp0"); got != "INIT" {
		t.Errorf("fw1 carp0 after down = %s, want INIT", got)
	}
	if len(fw1.k.Addrs("carp0")) != 0 {
		t.Errorf("fw1 keeps %v after down", fw1.k.Addrs("carp0"))
	}

	// Demotion too: the value is in effect and reported, with the warning.
	old, now, err := fw1.e.SetSysctl(context.Background(), api.SysctlPrefix+"demotion", 240)
	if !errors.As(err, &se) || old != 0 || now != 240 {
		t.Fatalf("sysctl demotion=240 with a full state dir = %d -> %d, %v; want 0 -> 240 and a *api.SaveError", old, now, err)
	}
	st, _ := fw1.e.Status(context.Background(), api.StatusQuery{})
	if got := knobValue(st, api.SysctlPrefix+"demotion"); got != 240 {
		t.Errorf("demotion in effect = %d, want 240", got)
	}
	// A forced state needs no new save, but the configuration is still
	// unsaved: say so again.
	if err := fw1.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpState, Str: "backup"}}}); !errors.As(err, &se) {
		t.Errorf("state backup while unsaved: err = %v, want the warning", err)
	}
}

// checkRetriesWhileFull: while the disk stays full, fw1 retries the save
// every saveRetry, logs the failure once with its reason and leaves file
// as it was (saved).
func checkRetriesWhileFull(t *testing.T, fw1 *node, disk *fullDisk, file string, saved []byte) {
	// Retried every saveRetry from the engine's loop, logged once.
	before := disk.count()
	time.Sleep(6*saveRetry + time.Millisecond)
	synctest.Wait()
	if got := disk.count() - before; got != 6 {
		t.Errorf("%d save attempts in %v of full disk, want 6 (every %v)", got, 6*saveRetry, saveRetry)
	}
	if n := strings.Count(fw1.logs.String(), "configuration not saved"); n != 1 {
		t.Errorf("%d log lines about the failed save, want 1 (rate-limited):\n%s", n, fw1.logs.String())
	}
	if !strings.Contains(fw1.logs.String(), "no space left on device") {
		t.Errorf("log does not give the reason:\n%s", fw1.logs.String())
	}
	if now, _ := os.ReadFile(file); !bytes.Equal(now, saved) {
		t.Fatalf("config.json changed while the disk was full:\n%s\nwas:\n%s", now, saved)
	}
}

// A state directory that the OS refuses (its parent is a regular file:
// ENOTDIR, which root cannot override) does not stop the runbook either, and
// is saved as soon as it can be made.
func TestStateDirThatCannotBeCreatedIsSavedOnceItCanBe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := t.TempDir()
		blocker := filepath.Join(base, "var")
		dir := filepath.Join(blocker, "carpd")
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", dir)
		defer n.stop(t)
		// After the start (which found nothing saved), the state
		// directory's parent becomes a regular file.
		if err := os.WriteFile(blocker, []byte("not a directory\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpCreate}}})
		var se *api.SaveError
		if !errors.As(err, &se) || !errors.Is(err, syscall.ENOTDIR) {
			t.Fatalf("carp0 create under a file: err = %v, want a *api.SaveError for ENOTDIR", err)
		}
		if want := "configuration not saved (will retry): mkdir " + blocker + ": not a directory"; err.Error() != want {
			t.Errorf("warning = %q, want %q", err.Error(), want)
		}
		err = n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpPass, Str: "lanpasswd"},
			{Kind: api.OpCarpdev, Str: "em0"}, {Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.1/24")}}})
		if !errors.As(err, &se) {
			t.Fatalf("vhid line: err = %v, want a *api.SaveError", err)
		}
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		if got := n.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("carp0 = %s, want MASTER: an unsaved configuration runs all the same", got)
		}
		if err := os.Remove(blocker); err != nil {
			t.Fatal(err)
		}
		time.Sleep(saveRetry)
		synctest.Wait()
		if _, err := os.Stat(filepath.Join(dir, configFile)); err != nil {
			t.Fatalf("not saved once the directory could be made: %v\n%s", err, n.logs.String())
		}
		// What was saved is the whole configuration in effect.
		before, _ := n.e.Status(context.Background(), api.StatusQuery{ShowKeys: true})
		c, err := loadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Ifaces) != 1 || len(c.Ifaces[0].VHIDs) != 1 || c.Ifaces[0].VHIDs[0].Key != "lanpasswd" ||
			len(c.Ifaces[0].VHIDs[0].Addrs) != 1 || len(before.VHIDs) != 1 || before.VHIDs[0].Addrs[0] != c.Ifaces[0].VHIDs[0].Addrs[0] {
			t.Fatalf("saved configuration %+v, in effect %+v", c, before.VHIDs)
		}
	})
}

// Stopping with an unsaved configuration tries once more and says in the
// log what the next start will bring back.
func TestStopWithTheStateDirStillFullSaysSo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", dir)
		runbook284(t, n, 0)
		saved, err := os.ReadFile(filepath.Join(dir, configFile))
		if err != nil {
			t.Fatal(err)
		}
		disk := &fullDisk{full: true}
		useWriter(t, n, disk.write)
		if err := n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpDown}}}); err == nil {
			t.Fatal("no warning with a full disk")
		}
		before := disk.count()
		n.stop(t)
		if disk.count() != before+1 {
			t.Errorf("%d save attempts at stop, want 1", disk.count()-before)
		}
		if !strings.Contains(n.logs.String(), "configuration not saved at stop, the next start uses the last saved one") {
			t.Errorf("stop does not say the change is lost:\n%s", n.logs.String())
		}
		if now, _ := os.ReadFile(filepath.Join(dir, configFile)); !bytes.Equal(now, saved) {
			t.Errorf("config.json changed")
		}
	})
}

// TestASlowDiskNeverHoldsAnAdvert: config.json is written off the event
// loop. While a line's save hangs on the disk, a VRRPv3 MASTER at 10 ms
// keeps advertising on time with the line already in effect, and the
// command returns once the write is done.
func TestASlowDiskNeverHoldsAnAdvert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", t.TempDir())
		defer n.stop(t)
		n.ifconfig(t, "em0", vrrpLine(120, 1)...)
		time.Sleep(carp.VRRPMasterDown(120, 1) + time.Millisecond)
		synctest.Wait()
		release := make(chan struct{})
		useWriter(t, n, func(dir, name string, b []byte) error {
			<-release // the disk takes its time
			return writeAtomic(dir, name, b)
		})
		var prios []byte
		n.k.SetSendHook(func(_ string, p osif.Packet) { prios = append(prios, p.Payload[2]) })
		done := make(chan error, 1)
		go func() {
			done <- n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "em0", Ops: []api.Op{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpVRRPPrio, Int: 130}}})
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("the command returned (%v) before its save was written", err)
		default:
		}
		if len(prios) < 99 || prios[len(prios)-1] != 130 {
			t.Fatalf("%d adverts in the second the save hung (want 100, priority 130 at the end: %v)", len(prios), prios[len(prios)-1:])
		}
		close(release)
		synctest.Wait()
		if err := <-done; err != nil {
			t.Fatalf("Ifconfig: %v", err)
		}
		b, err := os.ReadFile(filepath.Join(n.e.opts.StateDir, configFile))
		if err != nil || !strings.Contains(string(b), `"vrrpprio":130`) {
			t.Fatalf("config.json after the save: %s %v", b, err)
		}
	})
}

// TestASlowFailingSaveIsRetriedAfterTheCallerGaveUp: the outcome of a save
// reaches the loop even when the command's caller stopped waiting during a
// slow write: a failure is retried and the change ends up on disk.
func TestASlowFailingSaveIsRetriedAfterTheCallerGaveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", t.TempDir())
		defer n.stop(t)
		// Eight times: when both are ready, a select picks the expired
		// context or the loop at random, so one round may not tell.
		for prio := 120; prio < 128; prio++ {
			release := make(chan struct{})
			useWriter(t, n, func(string, string, []byte) error {
				<-release
				return syscall.EIO
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			done := make(chan error, 1)
			go func() { done <- n.e.Ifconfig(ctx, api.IfconfigRequest{Iface: "em0", Ops: vrrpLine(prio, 10)}) }()
			time.Sleep(2 * time.Second) // the caller's deadline passes during the write
			useWriterAsync(n, writeAtomic)
			close(release)
			synctest.Wait()
			<-done
			cancel()
			time.Sleep(saveRetry + time.Second)
			synctest.Wait()
			b, err := os.ReadFile(filepath.Join(n.e.opts.StateDir, configFile))
			if want := fmt.Sprintf(`"vrrpprio":%d`, prio); err != nil || !strings.Contains(string(b), want) {
				t.Fatalf("config.json after the retry: %s %v, want %s\n%s", b, err, want, n.logs)
			}
		}
	})
}

// useWriterAsync swaps the writer from a goroutine, for a test whose loop
// may be busy: the swap is seen by the next job.
func useWriterAsync(n *node, w func(dir, name string, b []byte) error) {
	go func() { _ = n.e.call(context.Background(), func() { n.e.save.write = w }) }()
}

// TestAJobNotWrittenBeforeStopIsWrittenAtStop: a change whose save job was
// handed out but never written (its caller stopped with carpd) is written
// by the engine's last save at stop.
func TestAJobNotWrittenBeforeStopIsWrittenAtStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", dir)
		var err error
		if cerr := n.e.call(context.Background(), func() {
			_, err = n.e.ifconfig(api.IfconfigRequest{Iface: "em0", Ops: vrrpLine(140, 10)})
		}); cerr != nil || err != nil {
			t.Fatal(cerr, err)
		}
		n.stop(t) // the job is dropped, as by a caller killed with carpd
		b, rerr := os.ReadFile(filepath.Join(dir, configFile))
		if rerr != nil || !strings.Contains(string(b), `"vrrpprio":140`) {
			t.Fatalf("config.json after stop: %s %v", b, rerr)
		}
	})
}

// TestARetryOnASlowDiskNeverHoldsAnAdvert: after a failed save, the retry
// writes off the loop too: while it hangs, a MASTER at 10 ms keeps
// advertising.
func TestARetryOnASlowDiskNeverHoldsAnAdvert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", t.TempDir())
		defer n.stop(t)
		useWriter(t, n, func(string, string, []byte) error { return syscall.ENOSPC })
		err := n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "em0", Ops: vrrpLine(120, 1)})
		var se *api.SaveError
		if !errors.As(err, &se) {
			t.Fatalf("Ifconfig on a full disk: %v, want a SaveError", err)
		}
		time.Sleep(carp.VRRPMasterDown(120, 1) + time.Millisecond)
		synctest.Wait()
		release := make(chan struct{})
		useWriter(t, n, func(dir, name string, b []byte) error {
			<-release
			return writeAtomic(dir, name, b)
		})
		var sent int
		n.k.SetSendHook(func(string, osif.Packet) { sent++ })
		time.Sleep(saveRetry + time.Second) // the retry starts and hangs
		synctest.Wait()
		if want := int((saveRetry + time.Second) / (10 * time.Millisecond)); sent < want-2 {
			t.Fatalf("%d adverts while the retry hung, want about %d", sent, want)
		}
		close(release)
		synctest.Wait()
		if _, err := os.Stat(filepath.Join(n.e.opts.StateDir, configFile)); err != nil {
			t.Fatalf("config.json after the retry: %v", err)
		}
	})
}
