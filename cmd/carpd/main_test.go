package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIfmapFileAndFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ifmap")
	if err := os.WriteFile(file, []byte("# BSD=Linux\n\nem0 = eth0\nem1=enp3s0 # uplink\nfxp0=eth9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := loadIfmap(file, []string{"fxp0=eth1"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"em0": "eth0", "em1": "enp3s0", "fxp0": "eth1"} // the flag wins
	if !maps.Equal(got, want) {
		t.Fatalf("ifmap = %v, want %v", got, want)
	}
	if got, err := loadIfmap(filepath.Join(dir, "missing"), nil); err != nil || len(got) != 0 {
		t.Fatalf("a missing file must be fine: %v %v", got, err)
	}
	if err := os.WriteFile(file, []byte("em0=eth0\nbogus line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadIfmap(file, nil); err == nil || !strings.Contains(err.Error(), file+":2:") {
		t.Fatalf("bad line error = %v, want it to name %s:2", err, file)
	}
	if _, err := loadIfmap("", []string{"em0=eth0", "em1=eth0"}); err == nil || !strings.Contains(err.Error(), "em0 and em1 both map to eth0") {
		t.Fatalf("two BSD names for one link: %v", err)
	}
	if _, err := loadIfmap("", []string{"carp0=eth0"}); err == nil {
		t.Fatal("a mapping for carp0 accepted")
	}
	if _, err := loadIfmap("", []string{"em0=averyveryverylongname"}); err == nil {
		t.Fatal("a Linux name over 15 characters accepted")
	}
}
