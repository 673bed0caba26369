package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// devdRules is a devd.conf in the FreeBSD Handbook's style: a script taking
// $subsystem $type on every MASTER or BACKUP of a vhid.
const devdRules = `# /etc/devd.conf, as in the FreeBSD Handbook's CARP chapter
notify 0 {
	match "system"		"CARP";
	match "subsystem"	"[0-9]+@[0-9a-z]+";
	match "type"		"(MASTER|BACKUP)";
	action "%s $subsystem $type";
};
`

// actionLog returns the lines the action script wrote so far.
func actionLog(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(strings.ReplaceAll(string(b), " ", "/"))
}

// devd.conf rules run on both hosts for every transition of a
// failover and a failback, with the right arguments, in order; the pipe
// carries the same events; an action that hangs does not delay the next
// failover.
func TestDevdConfActionsFollowAFailoverAndAFailback(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Handbook285()
	fw1, fw2 := labHost(lab, "fw1"), labHost(lab, "fw2")
	logs := map[*host]string{}
	for _, h := range []*host{fw1, fw2} {
		script := filepath.Join(lab.Dir, h.name+"-carpcontrol.sh")
		logs[h] = filepath.Join(lab.Dir, h.name+".actions")
		if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$1 $2\" >>"+logs[h]+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		rules := fmt.Sprintf(devdRules, script)
		// The FreeBSD <= 9 form: the link of a cloned carpN.
		rules += "notify 0 {\n\tmatch \"system\" \"IFNET\";\n\tmatch \"subsystem\" \"carp[0-9]+\";\n" +
			"\tmatch \"type\" \"LINK_(UP|DOWN)\";\n\taction \"echo $subsystem/$type >>" + logs[h] + ".ifnet\";\n};\n"
		if err := os.WriteFile(h.devdConf(), []byte(rules), 0o644); err != nil {
			t.Fatal(err)
		}
		h.startCarpd(t)
	}
	fw1.mustSh(t, runbook(t, "handbook-28.5-fw1.sh"))
	fw1.waitState(t, "carp0", "MASTER", 6*time.Second)
	fw1.waitState(t, "carp1", "MASTER", 6*time.Second)
	fw2.mustSh(t, runbook(t, "handbook-28.5-fw2.sh"))
	fw2.waitState(t, "carp0", "BACKUP", 2*time.Second)
	fw2.waitState(t, "carp1", "BACKUP", 2*time.Second)
	pipe := readPipe(t, fw2.devdPipe())

	// Failover (fw1's engine killed) and failback (fw1 back, preempting).
	if err := fw1.carpd.Kill(syscall.SIGKILL); err == nil {
		t.Fatal("carpd exited cleanly after SIGKILL?")
	}
	fw2.waitState(t, "carp0", "MASTER", 6*time.Second)
	fw2.waitState(t, "carp1", "MASTER", 6*time.Second)
	fw1.startCarpd(t)
	fw1.waitState(t, "carp0", "MASTER", 6*time.Second)
	fw1.waitState(t, "carp1", "MASTER", 6*time.Second)
	fw2.waitState(t, "carp0", "BACKUP", 3*time.Second)
	fw2.waitState(t, "carp1", "BACKUP", 3*time.Second)

	want := map[*host]map[string][]string{
		// fw1: configured (BACKUP, MASTER), killed, restarted (BACKUP, MASTER).
		fw1: {"1@em0": {"BACKUP", "MASTER", "BACKUP", "MASTER"}, "2@em1": {"BACKUP", "MASTER", "BACKUP", "MASTER"}},
		// fw2: configured (BACKUP), failover (MASTER), failback (BACKUP).
		fw2: {"1@em0": {"BACKUP", "MASTER", "BACKUP"}, "2@em1": {"BACKUP", "MASTER", "BACKUP"}},
	}
	for h, bySub := range want {
		perSub := func() map[string][]string {
			got := map[string][]string{}
			for _, l := range actionLog(logs[h]) {
				sub, typ, _ := strings.Cut(l, "/")
				got[sub] = append(got[sub], typ)
			}
			return got
		}
		if _, ok := netlab.Eventually(10*time.Second, func() bool {
			got := perSub()
			return slices.Equal(got["1@em0"], bySub["1@em0"]) && slices.Equal(got["2@em1"], bySub["2@em1"])
		}); !ok {
			t.Errorf("%s: actions ran for %v, want %v\n%s", h.name, perSub(), bySub, h.log())
		}
	}
	// The IFNET rule ran for fw2's clones: down when configured (BACKUP), up
	// on the failover, down on the failback.
	ifnet := func() map[string][]string {
		got := map[string][]string{}
		for _, l := range actionLog(logs[fw2] + ".ifnet") {
			sub, typ, _ := strings.Cut(l, "/")
			got[sub] = append(got[sub], typ)
		}
		return got
	}
	wantIfnet := []string{"LINK_DOWN", "LINK_UP", "LINK_DOWN"}
	if _, ok := netlab.Eventually(10*time.Second, func() bool {
		got := ifnet()
		return slices.Equal(got["carp0"], wantIfnet) && slices.Equal(got["carp1"], wantIfnet)
	}); !ok {
		t.Errorf("fw2: IFNET actions %v, want %v for carp0 and carp1", ifnet(), wantIfnet)
	}
	// The pipe reader saw the same CARP events as fw2's actions, in order.
	var fromPipe []string
	for _, l := range pipe.snapshot() {
		if ev := strings.Fields(l); len(ev) == 3 && ev[0] == "!system=CARP" && (ev[2] == "type=MASTER" || ev[2] == "type=BACKUP") {
			fromPipe = append(fromPipe, strings.TrimPrefix(ev[1], "subsystem=")+"/"+strings.TrimPrefix(ev[2], "type="))
		}
	}
	if got := actionLog(logs[fw2]); !slices.Equal(fromPipe, got[2:]) {
		t.Errorf("fw2's pipe saw %v after connecting, its actions after configuration were %v", fromPipe, got[2:])
	}

	// An action that hangs, added by SIGHUP, delays no failover. (exec: the
	// shell becomes the sleep, which the kernel kills when carpd dies.)
	hang := "notify 10 {\n\tmatch \"system\" \"CARP\";\n\tmatch \"type\" \"MASTER\";\n\taction \"exec sleep 300\";\n};\n"
	b, _ := os.ReadFile(fw2.devdConf())
	if err := os.WriteFile(fw2.devdConf(), append([]byte(hang), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fw2.carpd.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, ok := netlab.Eventually(5*time.Second, func() bool { return strings.Contains(fw2.log(), "SIGHUP: event actions from") }); !ok {
		t.Fatalf("fw2 did not re-read devd.conf:\n%s", fw2.log())
	}
	start := time.Now()
	if err := fw1.carpd.Kill(syscall.SIGKILL); err == nil {
		t.Fatal("carpd exited cleanly after SIGKILL?")
	}
	fw2.waitState(t, "carp0", "MASTER", 6*time.Second)
	fw2.waitState(t, "carp1", "MASTER", 6*time.Second)
	limit := carp.MasterDown(1, 128) + 100*time.Millisecond
	for _, who := range []string{"1@em0", "2@em1"} {
		if took := fw2.transitionAt(t, who, "MASTER").Sub(start); took > limit {
			t.Errorf("%s: failover with a hanging action took %v, over %v", who, took, limit)
		} else {
			t.Logf("%s: MASTER %v after the kill with a hanging action queued (limit %v)", who, took, limit)
		}
	}
}
