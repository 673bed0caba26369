package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// mountTmpfs mounts a tmpfs of the given size on a new directory and
// unmounts it at cleanup, after the lab (registered later, so cleaned up
// first) has stopped every process that could use it.
func mountTmpfs(t testing.TB, size string) string {
	t.Helper()
	netlab.Require(t)
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
				t.Errorf("cleanup: umount %s: %v", dir, err)
			}
		}
	})
	return dir
}

// fill writes a file until the file system holding dir has no space left.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for i := 0; ; i++ {
		_, err := f.Write(chunk)
		if errors.Is(err, syscall.ENOSPC) {
			return p
		}
		if err != nil || i > 1<<16 {
			t.Fatalf("filling %s: %v after %d chunks", dir, err, i)
		}
	}
}

// savedCarp0Down reads config.json and reports whether carp0 is saved as
// down and which demotion is saved.
func savedCarp0Down(t *testing.T, file string) (down bool, demotion int64, err error) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		return false, 0, err
	}
	var c struct {
		Knobs  map[string]int64 `json:"knobs"`
		Ifaces []struct {
			Name string `json:"name"`
			Down bool   `json:"down"`
		} `json:"ifaces"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return false, 0, err
	}
	for _, ifc := range c.Ifaces {
		if ifc.Name == "carp0" {
			down = ifc.Down
		}
	}
	return down, c.Knobs["demotion"], nil
}

// With fw1's state directory full (then read-only),
// the admin still fails over by hand (`ifconfig carp0 down`, a demotion);
// the commands succeed with a warning on stderr, the last saved config.json
// stays whole, and carpd saves the change by itself once there is space
// again (once the file system is writable again).
func TestFullStateDirDoesNotBlockFailover(t *testing.T) {
	stateDir := mountTmpfs(t, "64k")
	lab := netlab.New(t, bin)
	lab.Handbook285()
	fw1, fw2 := labHost(lab, "fw1"), labHost(lab, "fw2")
	fw1.stateDir = stateDir
	fw1.startCarpd(t)
	fw2.startCarpd(t)
	fw1.mustSh(t, runbook(t, "handbook-28.5-fw1.sh"))
	fw1.waitState(t, "carp0", "MASTER", 6*time.Second)
	fw1.waitState(t, "carp1", "MASTER", 6*time.Second)
	fw2.mustSh(t, runbook(t, "handbook-28.5-fw2.sh"))
	fw2.waitState(t, "carp0", "BACKUP", 2*time.Second)
	fw2.waitState(t, "carp1", "BACKUP", 2*time.Second)

	file := filepath.Join(stateDir, "config.json")
	saved, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("fw1 saved nothing before the disk filled: %v", err)
	}
	if down, _, err := savedCarp0Down(t, file); err != nil || down {
		t.Fatalf("saved carp0 down = %v (%v) before the test", down, err)
	}
	filler := fill(t, stateDir)
	warn := "warning: configuration not saved (will retry): write " + file + ": no space left on device\n"

	// Failover by hand: carp0 down on the MASTER.
	out, errOut, code := fw1.sh("ifconfig carp0 down")
	if code != 0 || out != "" || errOut != "ifconfig: "+warn {
		t.Fatalf("ifconfig carp0 down with a full state dir: exit %d, stdout %q, stderr %q; want exit 0 and stderr %q\n%s",
			code, out, errOut, "ifconfig: "+warn, fw1.log())
	}
	fw2.waitState(t, "carp0", "MASTER", 2*time.Second)
	if got := fw1.state("carp0"); got != "INIT" {
		t.Errorf("fw1 carp0 after down = %s, want INIT", got)
	}
	if lab.HasAddr("fw1", "172.16.0.100") {
		t.Error("fw1 keeps 172.16.0.100 after ifconfig carp0 down")
	}

	// Failover by demotion: fw2 (preempt=1) takes carp1 too.
	out, errOut, code = fw1.sh("sysctl net.inet.carp.demotion=240")
	if code != 0 || out != "net.inet.carp.demotion: 0 -> 240\n" || errOut != "sysctl: "+warn {
		t.Fatalf("sysctl net.inet.carp.demotion=240 with a full state dir: exit %d, stdout %q, stderr %q; want exit 0 and stderr %q",
			code, out, errOut, "sysctl: "+warn)
	}
	fw2.waitState(t, "carp1", "MASTER", 4*time.Second)
	fw1.waitState(t, "carp1", "BACKUP", 2*time.Second)

	// Nothing saved before is lost, and no partial file is left behind.
	if now, err := os.ReadFile(file); err != nil || string(now) != string(saved) {
		t.Fatalf("config.json changed while the disk was full (%v):\n%s\nwas:\n%s", err, now, saved)
	}
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left in the state dir", e.Name())
		}
	}
	if n := strings.Count(fw1.log(), "configuration not saved"); n != 1 {
		t.Errorf("carpd logged the failed save %d times, want once (rate-limited):\n%s", n, fw1.log())
	}

	// Space again: carpd saves the configuration in effect by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	d, ok := netlab.Eventually(15*time.Second, func() bool {
		down, demotion, err := savedCarp0Down(t, file)
		return err == nil && down && demotion == 240
	})
	if !ok {
		b, _ := os.ReadFile(file)
		t.Fatalf("config.json not saved with carp0 down and demotion 240 after the space came back:\n%s\ncarpd log:\n%s", b, fw1.log())
	}
	t.Logf("saved %v after the space came back", d)
	if !strings.Contains(fw1.log(), "carpd: configuration saved to "+file) {
		t.Errorf("no 'configuration saved' in carpd's log:\n%s", fw1.log())
	}
	// The roles are as the admin left them.
	if fw2.state("carp0") != "MASTER" || fw2.state("carp1") != "MASTER" {
		t.Errorf("fw2 carp0 %s, carp1 %s after the save, want MASTER of both", fw2.state("carp0"), fw2.state("carp1"))
	}

	// Read-only (the file system itself, so carpd's mount namespace sees
	// it too): the same, with EROFS.
	saved, err = os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	remount(t, stateDir, syscall.MS_RDONLY)
	out, errOut, code = fw1.sh("ifconfig carp0 up")
	warn = "warning: configuration not saved (will retry): open " + file + ": read-only file system\n"
	if code != 0 || out != "" || errOut != "ifconfig: "+warn {
		t.Fatalf("ifconfig carp0 up with a read-only state dir: exit %d, stdout %q, stderr %q; want exit 0 and stderr %q",
			code, out, errOut, "ifconfig: "+warn)
	}
	// Demoted by 240, fw1 comes back as BACKUP.
	fw1.waitState(t, "carp0", "BACKUP", 6*time.Second)
	if now, err := os.ReadFile(file); err != nil || string(now) != string(saved) {
		t.Fatalf("config.json changed on a read-only file system (%v):\n%s", err, now)
	}
	remount(t, stateDir, 0)
	if _, ok := netlab.Eventually(15*time.Second, func() bool {
		down, _, err := savedCarp0Down(t, file)
		return err == nil && !down
	}); !ok {
		b, _ := os.ReadFile(file)
		t.Fatalf("config.json not saved with carp0 up once writable again:\n%s\ncarpd log:\n%s", b, fw1.log())
	}
}

// remount changes the flags of the file system mounted on dir (MS_RDONLY
// or 0 for read-write), for every mount namespace that has it.
func remount(t *testing.T, dir string, flags uintptr) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_NOSUID|syscall.MS_NODEV|flags, ""); err != nil {
		t.Fatalf("remount %s (flags %#x): %v", dir, flags, err)
	}
}
