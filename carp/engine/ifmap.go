package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// ParseIfmap reads an interface map: one BSD=Linux pair a line (em0=eth0),
// '#' starts a comment, blank lines are fine. name is the file's name for
// errors, which read "name:line: reason". Both names must be names Linux
// and BSD can hold (ValidIfName), a carpN name is carpd's own and cannot be
// mapped, and neither a BSD name nor a Linux name may appear twice.
func ParseIfmap(r io.Reader, name string) (map[string]string, error) {
	m := map[string]string{}
	bsdLine := map[string]int{}
	linuxLine := map[string]int{}
	sc := bufio.NewScanner(io.LimitReader(r, maxFile+1))
	n := 0
	read := 0
	for sc.Scan() {
		n++
		read += len(sc.Bytes()) + 1
		if read > maxFile+1 {
			return nil, fmt.Errorf("%s: larger than %d bytes", name, maxFile)
		}
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		bsd, linux, err := parsePair(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if at, dup := bsdLine[bsd]; dup {
			return nil, fmt.Errorf("%s:%d: %s is already mapped on line %d", name, n, bsd, at)
		}
		if at, dup := linuxLine[linux]; dup {
			return nil, fmt.Errorf("%s:%d: %s is already the Linux name of %s on line %d", name, n, linux, bsdOf(m, linux), at)
		}
		bsdLine[bsd], linuxLine[linux] = n, n
		m[bsd] = linux
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return m, nil
}

// bsdOf is the BSD name m gives the Linux name linux ("" when none).
func bsdOf(m map[string]string, linux string) string {
	for b, l := range m {
		if l == linux {
			return b
		}
	}
	return ""
}

// parsePair checks one BSD=Linux mapping.
func parsePair(p string) (bsd, linux string, err error) {
	bsd, linux, ok := strings.Cut(p, "=")
	bsd, linux = strings.TrimSpace(bsd), strings.TrimSpace(linux)
	if !ok || bsd == "" || linux == "" {
		return "", "", fmt.Errorf("bad interface mapping %q (want BSD=Linux, e.g. em0=eth0)", p)
	}
	if err := ValidIfName(bsd); err != nil {
		return "", "", fmt.Errorf("BSD name: %w", err)
	}
	if err := ValidIfName(linux); err != nil {
		return "", "", fmt.Errorf("Linux name: %w", err)
	}
	if api.IsCloneName(bsd) {
		return "", "", fmt.Errorf("%s is a carp interface name, not a mappable one", bsd)
	}
	return bsd, linux, nil
}

// LoadIfmap reads the interface map from file (a missing file is an empty
// map; "" reads none) and adds the pairs of the --ifmap flag, which win
// over the file. Errors name the file and line, or the flag.
func LoadIfmap(file string, pairs []string) (map[string]string, error) {
	m := map[string]string{}
	if file != "" {
		// Non-blocking, and only a regular file: a FIFO or a device in
		// its place must not hang carpd's start or its SIGHUP.
		f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		switch {
		case err == nil:
			if fi, serr := f.Stat(); serr != nil || !fi.Mode().IsRegular() {
				f.Close()
				return nil, fmt.Errorf("ifmap: %s: not a regular file", file)
			}
			m, err = ParseIfmap(f, file)
			f.Close()
			if err != nil {
				return nil, err
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("ifmap: %w", err)
		}
	}
	flag := map[string]bool{}
	for _, p := range pairs {
		bsd, linux, err := parsePair(p)
		if err != nil {
			return nil, fmt.Errorf("--ifmap: %w", err)
		}
		if flag[bsd] {
			return nil, fmt.Errorf("--ifmap: %s is mapped twice", bsd)
		}
		flag[bsd] = true
		m[bsd] = linux
	}
	// Every output shows one BSD name per Linux link.
	byLinux := map[string]string{}
	for bsd, linux := range m {
		if other, dup := byLinux[linux]; dup {
			return nil, fmt.Errorf("ifmap: %s and %s both map to %s", min(bsd, other), max(bsd, other), linux)
		}
		byLinux[linux] = bsd
	}
	return m, nil
}
