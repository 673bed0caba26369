package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	configFile = "config.json"
	kernelFile = "kernel.json" // /proc/sys values to restore, written before changing them
	maxFile    = 1 << 20       // state files are small: refuse anything larger
)

func loadConfig(dir string) (*Config, error) {
	c := &Config{Version: configVersion, Knobs: map[string]int64{}}
	if dir == "" {
		return c, nil
	}
	b, err := readBounded(filepath.Join(dir, configFile))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	// Validated as strictly as the command line: a bad file is refused
	// before anything in the kernel is touched (validate.go).
	c, err = decodeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, configFile), err)
	}
	return c, nil
}

func loadKernelState(dir string) (map[string]string, error) {
	if dir == "" {
		return nil, nil
	}
	b, err := readBounded(filepath.Join(dir, kernelFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := decodeKernelState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, kernelFile), err)
	}
	return m, nil
}

func saveKernelState(dir string, m map[string]string) error {
	if dir == "" {
		return nil
	}
	if len(m) == 0 {
		err := os.Remove(filepath.Join(dir, kernelFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("engine: %w", err)
		}
		return nil
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(dir, kernelFile, b)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if fi.Size() > maxFile {
		return nil, fmt.Errorf("engine: %s: larger than %d bytes", path, maxFile)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("engine: read %s: %w", path, err)
	}
	return b, nil
}

// writeAtomic replaces dir/name with b so that a crash leaves either the old
// or the new file, never a torn one: b goes to a temporary file (mode 0600:
// they hold the keys), which is synced, renamed to name, and the directory
// synced.
func writeAtomic(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("engine: state dir: %w", err)
	}
	fail := func(err error) error { return fmt.Errorf("engine: save %s: %w", name, err) }
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fail(err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fail(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fail(err)
	}
	return nil
}
