package devd

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// DefaultPath is devd's configuration file.
const DefaultPath = "/etc/devd.conf"

// Load reads the devd configuration at path, then every file whose name ends
// in ".conf" in each directory named by a `directory` option, as devd's
// config::parse does: directories in the order named (including those named
// by the files read from a directory, each directory once), files within a
// directory in name order (devd takes readdir order, which is unspecified).
// A directory that cannot be opened is skipped, as devd skips it. All files
// share one set of global variables; a match's variables are expanded when
// it is parsed, with the `set` options read so far.
func Load(path string) (*Config, error) {
	c := newConfig()
	if err := c.loadFile(path); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i := 0; i < len(c.Directories); i++ {
		dir := c.Directories[i]
		if seen[dir] {
			continue
		}
		seen[dir] = true
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".conf") && !e.IsDir() {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if err := c.loadFile(filepath.Join(dir, n)); err != nil {
				return nil, err
			}
		}
	}
	c.finish()
	return c, nil
}

// maxFile bounds one configuration file: devd.conf files are a few KiB.
const maxFile = 1 << 20

// loadFile reads one configuration file: a regular file (a FIFO or a
// device named *.conf must not hang or flood the engine's start) of at
// most maxFile bytes.
func (c *Config) loadFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("devd: read config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("devd: read config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("devd: read config: %s: not a regular file", path)
	}
	if fi.Size() > maxFile {
		return fmt.Errorf("devd: read config: %s: larger than %d bytes", path, maxFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return fmt.Errorf("devd: read config: %w", err)
	}
	if len(data) > maxFile {
		return fmt.Errorf("devd: read config: %s: larger than %d bytes", path, maxFile)
	}
	return c.parseFile(path, data)
}
