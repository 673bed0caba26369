package events

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/engine"
)

// DefaultPipe is devd(8)'s stream socket.
const DefaultPipe = "/var/run/devd.pipe"

// Defaults of the devd.pipe server.
const (
	// DefaultPipeClients is devd's default connection limit (devd -l).
	DefaultPipeClients = 10
	// DefaultPipeBacklog is how many lines a reader may be behind before
	// it is dropped.
	DefaultPipeBacklog = 256
)

// clientBuf is the kernel send buffer of a reader's connection.
const clientBuf = 32 * 1024

// PipeOptions configure a PipeServer.
type PipeOptions struct {
	// MaxClients is the number of readers served at once; 0 means
	// DefaultPipeClients. A reader beyond it is closed at once.
	MaxClients int
	// Backlog is how many lines a reader may be behind (besides what the
	// kernel's socket buffer holds) before it is dropped; 0 means
	// DefaultPipeBacklog.
	Backlog int
	// Log receives connects, drops and errors.
	Log *log.Logger
}

// PipeServer is devd's devd.pipe: a Unix stream socket where every event
// is written to every reader as one line, exactly as devd writes it
// ("!system=CARP subsystem=1@em0 type=MASTER\n"), so `nc -U` and existing
// devd consumers work. Like devd, it never waits for a reader: one that
// falls behind by more than its backlog is dropped (closed); like devd,
// it never reads what a reader sends. The socket is mode 0666, as devd
// makes it.
type PipeServer struct {
	path string
	opts PipeOptions
	ln   *net.UnixListener

	mu      sync.Mutex
	clients map[*pipeClient]struct{}
	closed  bool
	lastLog time.Time // socket problems logged, rate-limited
	dropped atomic.Uint64

	wg sync.WaitGroup
}

type pipeClient struct {
	conn  *net.UnixConn
	lines chan []byte
	once  sync.Once
	gone  chan struct{}
}

func (c *pipeClient) close() {
	c.once.Do(func() {
		close(c.gone)
		c.conn.Close()
	})
}

// ListenPipe creates the socket at path (replacing a stale socket there,
// as devd does; any other kind of file is an error) and serves readers
// until Close.
func ListenPipe(path string, opts PipeOptions) (*PipeServer, error) {
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultPipeClients
	}
	if opts.Backlog <= 0 {
		opts.Backlog = DefaultPipeBacklog
	}
	if opts.Log == nil {
		opts.Log = log.New(discard{}, "", 0)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("devd pipe %s: exists and is not a socket", path)
		}
		// A socket something answers on is another engine's (or devd's):
		// only a stale one is replaced.
		if c, err := net.DialTimeout("unix", path, probeWait); err == nil {
			c.Close()
			return nil, fmt.Errorf("devd pipe %s: another process listens on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("devd pipe %s: remove the stale socket: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("devd pipe: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("devd pipe %s: %w", path, err)
	}
	s := &PipeServer{path: path, opts: opts, ln: ln, clients: map[*pipeClient]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// acceptPause is how long accept waits after a failure (descriptors or
// memory short); pipeLogEvery bounds the log lines about the socket, which
// any local user can provoke.
const (
	acceptPause  = 50 * time.Millisecond
	pipeLogEvery = 10 * time.Second
	// probeWait bounds the dial that checks whether a process listens on
	// an existing socket: a live listener accepts at once.
	probeWait = time.Second
)

// rateOK reports whether a line about the socket may be logged now.
func (s *PipeServer) rateOK() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.lastLog) < pipeLogEvery {
		return false
	}
	s.lastLog = now
	return true
}

// Path is the socket's path.
func (s *PipeServer) Path() string { return s.path }

func (s *PipeServer) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if s.rateOK() {
				s.opts.Log.Printf("carpd: devd pipe %s: accept: %v", s.path, err)
			}
			time.Sleep(acceptPause) // out of descriptors: do not spin
			continue
		}
		s.mu.Lock()
		if s.closed || len(s.clients) >= s.opts.MaxClients {
			full := !s.closed
			s.mu.Unlock()
			conn.Close()
			if full && s.rateOK() {
				s.opts.Log.Printf("carpd: devd pipe %s: %d readers already: connection refused (said at most every %v)", s.path, s.opts.MaxClients, pipeLogEvery)
			}
			continue
		}
		// devd's CLIENT_BUFSIZE: a reader that stops reading is noticed
		// after a few hundred lines rather than a few thousand.
		_ = conn.SetWriteBuffer(clientBuf)
		c := &pipeClient{conn: conn, lines: make(chan []byte, s.opts.Backlog), gone: make(chan struct{})}
		s.clients[c] = struct{}{}
		s.wg.Add(2)
		s.mu.Unlock()
		go s.write(c)
		go s.watch(c)
	}
}

// write sends c its lines in order until it is dropped or fails.
func (s *PipeServer) write(c *pipeClient) {
	defer s.wg.Done()
	defer s.remove(c)
	for {
		select {
		case <-c.gone:
			return
		case line := <-c.lines:
			if _, err := c.conn.Write(line); err != nil {
				return
			}
		}
	}
}

// watch notices a reader that hung up (devd's check_clients). A reader has
// nothing to say: one that writes is dropped at its first byte, so no
// local user can keep carpd busy reading.
func (s *PipeServer) watch(c *pipeClient) {
	defer s.wg.Done()
	var b [1]byte
	_, _ = c.conn.Read(b[:])
	s.remove(c)
}

func (s *PipeServer) remove(c *pipeClient) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
	c.close()
}

// Run writes ev to every reader without waiting: a reader whose backlog is
// full is dropped and logged.
func (s *PipeServer) Run(ev engine.Event) {
	line := ev.Line()
	var slow []*pipeClient
	s.mu.Lock()
	for c := range s.clients {
		select {
		case c.lines <- line:
		default:
			slow = append(slow, c)
			delete(s.clients, c)
		}
	}
	s.mu.Unlock()
	for _, c := range slow {
		c.close()
		n := s.dropped.Add(1)
		s.opts.Log.Printf("carpd: devd pipe %s: reader %d lines behind: dropped (%d readers dropped so far)", s.path, s.opts.Backlog, n)
	}
}

// Readers is the number of readers connected now.
func (s *PipeServer) Readers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// Dropped is the number of readers dropped for falling behind.
func (s *PipeServer) Dropped() uint64 { return s.dropped.Load() }

// Close removes the socket, disconnects every reader and waits for the
// server's goroutines.
func (s *PipeServer) Close() error {
	s.mu.Lock()
	s.closed = true
	cs := make([]*pipeClient, 0, len(s.clients))
	for c := range s.clients {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range cs {
		c.close()
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("devd pipe %s: %w", s.path, err)
	}
	return nil
}
