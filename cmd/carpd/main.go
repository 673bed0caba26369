// Command carpd is the bsdcarp engine: it speaks CARP on the wire, owns the
// configuration that ifconfig-carp and carpctl-sysctl change through its
// control socket, and moves virtual addresses between hosts.
package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/bsdcarp/bsdcarp/carp/control"
	"github.com/bsdcarp/bsdcarp/carp/engine"
	"github.com/bsdcarp/bsdcarp/kernelshim"
)

type cli struct {
	Socket    string   `help:"Control socket path." env:"CARPD_SOCKET" default:"${socket}"`
	StateDir  string   `help:"Directory where the configuration is saved." env:"CARPD_STATE_DIR" default:"/var/lib/carpd"`
	Ifmap     []string `help:"BSD-to-Linux interface names, e.g. em0=eth0,em1=eth1." sep:","`
	IfmapFile string   `help:"File of BSD=Linux name lines (# comments); missing is fine." default:"/etc/carpd/ifmap"`
}

func main() {
	var c cli
	kong.Parse(&c,
		kong.Name("carpd"),
		kong.Description("CARP engine: FreeBSD's carp(4) on Linux."),
		kong.Vars{"socket": control.DefaultSocket},
	)
	lg := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	if err := run(c, lg); err != nil {
		lg.Printf("carpd: %v", err)
		os.Exit(1)
	}
}

func run(c cli, lg *log.Logger) error {
	ifmap, err := loadIfmap(c.IfmapFile, c.Ifmap)
	if err != nil {
		return err
	}
	k, err := kernelshim.NewLinux()
	if err != nil {
		return err
	}
	defer k.Close()
	eng, err := engine.New(engine.Options{Kernel: k, StateDir: c.StateDir, IfMap: ifmap, Log: lg})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- eng.Run(ctx) }()
	select {
	case <-eng.Ready():
	case err := <-runErr:
		return err
	}
	// Ready means the socket accepts connections: listen only once the
	// engine serves requests.
	srv, err := control.Listen(control.SocketPath(c.Socket), eng)
	if err != nil {
		stop()
		<-runErr
		return err
	}
	srv.Logf = lg.Printf
	go func() {
		if err := srv.Serve(); err != nil {
			lg.Printf("carpd: %v", err)
		}
	}()
	lg.Printf("carpd: ready on %s", control.SocketPath(c.Socket))
	err = <-runErr
	srv.Close()
	if err == nil {
		lg.Printf("carpd: stopped")
	}
	return err
}

// loadIfmap reads the name map from the file (if present) and the flag; the
// flag wins.
func loadIfmap(file string, pairs []string) (map[string]string, error) {
	m := map[string]string{}
	if file != "" {
		f, err := os.Open(file)
		switch {
		case err == nil:
			sc := bufio.NewScanner(f)
			n := 0
			for sc.Scan() {
				n++
				line := strings.TrimSpace(sc.Text())
				if i := strings.IndexByte(line, '#'); i >= 0 {
					line = strings.TrimSpace(line[:i])
				}
				if line == "" {
					continue
				}
				if err := addPair(m, line); err != nil {
					f.Close()
					return nil, fmt.Errorf("%s:%d: %w", file, n, err)
				}
			}
			f.Close()
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("read %s: %w", file, err)
			}
		case !os.IsNotExist(err):
			return nil, fmt.Errorf("ifmap: %w", err)
		}
	}
	for _, p := range pairs {
		if err := addPair(m, p); err != nil {
			return nil, fmt.Errorf("--ifmap: %w", err)
		}
	}
	// Every output shows one BSD name per Linux link, and carpN are
	// carpd's own interfaces.
	byLinux := map[string]string{}
	for bsd, linux := range m {
		if engine.IsCloneName(bsd) {
			return nil, fmt.Errorf("ifmap: %s is a carp interface name, not a mappable one", bsd)
		}
		if other, dup := byLinux[linux]; dup {
			return nil, fmt.Errorf("ifmap: %s and %s both map to %s", min(bsd, other), max(bsd, other), linux)
		}
		byLinux[linux] = bsd
	}
	return m, nil
}

func addPair(m map[string]string, p string) error {
	bsd, linux, ok := strings.Cut(strings.TrimSpace(p), "=")
	bsd, linux = strings.TrimSpace(bsd), strings.TrimSpace(linux)
	if !ok || bsd == "" || linux == "" || len(linux) > 15 {
		return fmt.Errorf("bad interface mapping %q (want BSD=Linux, e.g. em0=eth0)", p)
	}
	m[bsd] = linux
	return nil
}
