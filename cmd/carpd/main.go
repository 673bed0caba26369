// Command carpd is the bsdcarp engine: it speaks CARP on the wire, owns the
// configuration that ifconfig-carp and carpctl-sysctl change through its
// control socket, and moves virtual addresses between hosts.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
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
// flag wins. The parser is engine.LoadIfmap: strict, errors name file:line.
func loadIfmap(file string, pairs []string) (map[string]string, error) {
	return engine.LoadIfmap(file, pairs)
}
