package main

import (
	"path/filepath"
	"testing"
)

// TestSampleIfmap: the commented /etc/carpd/ifmap that the Debian package
// installs maps nothing and is not an error.
func TestSampleIfmap(t *testing.T) {
	got, err := loadIfmap(filepath.Join("..", "..", "dist", "etc", "carpd", "ifmap"), nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("sample ifmap: %v, %v; want an empty map", got, err)
	}
	// Its example lines, uncommented, are a valid map.
	got, err = loadIfmap("", []string{"em0=eth0", "em1=eth1"})
	if err != nil || got["em0"] != "eth0" || got["em1"] != "eth1" {
		t.Fatalf("the sample's example: %v, %v", got, err)
	}
}
