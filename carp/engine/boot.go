package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// bootFile records the kernel boot (/proc/sys/kernel/random/boot_id) the
// state directory's kernel.json belongs to.
const bootFile = "boot_id"

// ForgetEarlierBoot drops kernel.json from the state directory when it was
// written during another boot of the kernel (bootID is this boot's
// /proc/sys/kernel/random/boot_id), and records bootID. The values in such a
// file were the originals of a kernel that is gone: restoring them would undo
// what this boot's admin set, not what carpd changed. The default state
// directory is under /run and never holds one; a --state-dir on disk can.
// It reports whether a file was dropped. Call it with the state directory
// locked, before New.
func ForgetEarlierBoot(dir, bootID string) (bool, error) {
	bootID = strings.TrimSpace(bootID)
	if dir == "" || bootID == "" {
		return false, nil
	}
	b, err := readBounded(filepath.Join(dir, bootFile))
	switch {
	case err == nil && strings.TrimSpace(string(b)) == bootID:
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("engine: %s: %w", filepath.Join(dir, bootFile), err)
	}
	dropped := false
	// A kernel.json without a boot_id predates this check; it is from this
	// boot only if the state directory is, which the caller cannot know
	// either: keep it then (a crash right after an upgrade must restore).
	if err == nil {
		switch rerr := os.Remove(filepath.Join(dir, kernelFile)); {
		case rerr == nil:
			dropped = true
		case !errors.Is(rerr, fs.ErrNotExist):
			return false, fmt.Errorf("engine: %w", rerr)
		}
	}
	if err := writeAtomic(dir, bootFile, []byte(bootID+"\n")); err != nil {
		return dropped, err
	}
	return dropped, nil
}
