// Package control is carpd's Unix-socket protocol: one JSON request and one
// JSON response per connection, each at most MaxMessage bytes. Anyone may
// read the status (without keys); only root may change anything, which the
// server checks with the peer's kernel credentials (SO_PEERCRED).
package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/engine"
	"golang.org/x/sys/unix"
)

// Version of the protocol; a server refuses any other.
const Version = 1

// MaxMessage bounds every request and response read from the socket.
const MaxMessage = 256 << 10

// DefaultSocket is used when neither --socket nor CARPD_SOCKET is given.
const DefaultSocket = "/run/carpd/carpd.sock"

// SocketPath returns flag if set, else $CARPD_SOCKET, else DefaultSocket.
func SocketPath(flag string) string {
	if flag != "" {
		return flag
	}
	if s := os.Getenv("CARPD_SOCKET"); s != "" {
		return s
	}
	return DefaultSocket
}

// Operations.
const (
	OpIfconfig = "ifconfig"
	OpStatus   = "status"
	OpSysctl   = "sysctl"
)

// Request is one message from a command to carpd.
type Request struct {
	Version  int                     `json:"v"`
	Op       string                  `json:"op"`
	Ifconfig *engine.IfconfigRequest `json:"ifconfig,omitempty"`
	ShowKeys bool                    `json:"show_keys,omitempty"`
	OID      string                  `json:"oid,omitempty"`
	Value    int64                   `json:"value,omitempty"`
}

// Error codes of a Response.
const (
	CodeCLI  = "cli"   // Error is BSD text to print after the command's prefix
	CodePerm = "eperm" // the caller is not root
	CodeFail = "fail"  // anything else
)

// Response is carpd's answer.
type Response struct {
	Version int            `json:"v"`
	Code    string         `json:"code,omitempty"`
	Error   string         `json:"error,omitempty"`
	Status  *engine.Status `json:"status,omitempty"`
	Old     int64          `json:"old,omitempty"`
	New     int64          `json:"new,omitempty"`
	// Warning is set when a change took effect with a problem the command
	// prints on stderr (the configuration could not be saved yet); the
	// command still succeeds.
	Warning string `json:"warning,omitempty"`
}

// Engine is what the server needs of carpd's engine.
type Engine interface {
	Ifconfig(ctx context.Context, req engine.IfconfigRequest) error
	Status(ctx context.Context, showKeys bool) (engine.Status, error)
	SetSysctl(ctx context.Context, oid string, v int64) (old, now int64, err error)
}

// MaxConns bounds the connections served at once: a local user cannot tie
// up carpd's file descriptors or flood its event loop.
const MaxConns = 16

// Server answers requests on a Unix socket.
type Server struct {
	eng   Engine
	ln    *net.UnixListener
	slots chan struct{}
	// Logf reports connection-level problems; nil discards them.
	Logf func(format string, args ...any)
}

// Listen creates the socket at path. A stale socket file is removed only if
// nothing answers on it, so a second carpd cannot steal a live one's socket.
func Listen(path string, eng Engine) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control: socket dir: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control: %s: another carpd is listening", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control: remove stale socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: listen %s: %w", path, err)
	}
	// Everyone may connect (status for non-root); writes are checked per request.
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: chmod %s: %w", path, err)
	}
	return &Server{eng: eng, ln: ln, slots: make(chan struct{}, MaxConns)}, nil
}

// Serve accepts connections until Close.
func (s *Server) Serve() error {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("control: accept: %w", err)
		}
		select {
		case s.slots <- struct{}{}:
			go func() {
				defer func() { <-s.slots }()
				s.handle(c)
			}()
		default:
			s.logf("control: %d connections busy, refusing one", MaxConns)
			c.Close()
		}
	}
}

// Close stops accepting and removes the socket file.
func (s *Server) Close() error { return s.ln.Close() }

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

func (s *Server) handle(c *net.UnixConn) {
	defer c.Close()
	// A request is one short line: a client that does not send it promptly
	// loses its slot. The reply may wait for the engine a little longer.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	resp := s.answer(c)
	resp.Version = Version
	if err := writeMessage(c, resp); err != nil {
		s.logf("control: reply: %v", err)
	}
}

func (s *Server) answer(c *net.UnixConn) Response {
	uid, err := peerUID(c)
	if err != nil {
		return Response{Code: CodeFail, Error: fmt.Sprintf("control: peer credentials: %v", err)}
	}
	var req Request
	if err := readMessage(c, &req); err != nil {
		return Response{Code: CodeFail, Error: err.Error()}
	}
	if req.Version != Version {
		return Response{Code: CodeFail, Error: fmt.Sprintf("control: protocol version %d, want %d", req.Version, Version)}
	}
	root := uid == 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch req.Op {
	case OpStatus:
		st, err := s.eng.Status(ctx, req.ShowKeys && root)
		if err != nil {
			return errResponse(err)
		}
		return Response{Status: &st}
	case OpIfconfig:
		if !root {
			return Response{Code: CodePerm, Error: "Operation not permitted"}
		}
		if req.Ifconfig == nil {
			return Response{Code: CodeFail, Error: "control: ifconfig request without body"}
		}
		err := s.eng.Ifconfig(ctx, *req.Ifconfig)
		if w, ok := warning(err); ok {
			return Response{Warning: w}
		}
		if err != nil {
			return errResponse(err)
		}
		return Response{}
	case OpSysctl:
		if !root {
			return Response{Code: CodePerm, Error: "Operation not permitted"}
		}
		old, now, err := s.eng.SetSysctl(ctx, req.OID, req.Value)
		if w, ok := warning(err); ok {
			return Response{Old: old, New: now, Warning: w}
		}
		if err != nil {
			return errResponse(err)
		}
		return Response{Old: old, New: now}
	default:
		return Response{Code: CodeFail, Error: fmt.Sprintf("control: unknown operation %q", req.Op)}
	}
}

// warning tells a change that took effect but was not saved from a refusal.
func warning(err error) (string, bool) {
	var se *engine.SaveError
	if errors.As(err, &se) {
		return se.Error(), true
	}
	return "", false
}

func errResponse(err error) Response {
	var ce *engine.CLIError
	if errors.As(err, &ce) {
		return Response{Code: CodeCLI, Error: ce.Msg}
	}
	return Response{Code: CodeFail, Error: err.Error()}
}

// writeMessage sends v as one JSON line.
func writeMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("control: encode: %w", err)
	}
	if len(b) >= MaxMessage {
		return fmt.Errorf("control: message of %d bytes exceeds %d", len(b), MaxMessage)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readMessage reads one JSON line of at most MaxMessage bytes.
func readMessage(r io.Reader, v any) error {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxMessage), 4096)
	var buf bytes.Buffer
	for {
		chunk, err := br.ReadSlice('\n')
		buf.Write(chunk)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && buf.Len() >= MaxMessage {
			return fmt.Errorf("control: message exceeds %d bytes", MaxMessage)
		}
		return fmt.Errorf("control: read: %w", err)
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return fmt.Errorf("control: decode: %w", err)
	}
	return nil
}

// Client talks to carpd.
type Client struct {
	Path    string
	Timeout time.Duration
}

// ErrNoEngine means nothing listens on the socket.
var ErrNoEngine = errors.New("carpd is not running")

// Do sends one request and waits for the response.
func (c Client) Do(req Request) (Response, error) {
	req.Version = Version
	to := c.Timeout
	if to == 0 {
		to = 10 * time.Second
	}
	conn, err := net.DialTimeout("unix", c.Path, to)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return Response{}, fmt.Errorf("%s: %w", c.Path, ErrNoEngine)
		}
		return Response{}, fmt.Errorf("control: dial %s: %w", c.Path, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(to))
	if err := writeMessage(conn, req); err != nil {
		return Response{}, err
	}
	var resp Response
	if err := readMessage(conn, &resp); err != nil {
		return Response{}, err
	}
	return resp, nil
}

// SplitFlags takes the bsdcarp options (--socket PATH, --socket=PATH and the
// given boolean long options such as --stats) off the front of a BSD command
// line and returns the socket path, the booleans seen and the BSD words.
// BSD options are single-dash, so the two never mix.
func SplitFlags(args []string, bools ...string) (socket string, seen map[string]bool, rest []string, err error) {
	seen = map[string]bool{}
	for len(args) > 0 {
		a := args[0]
		switch {
		case a == "--socket":
			if len(args) < 2 {
				return "", nil, nil, errors.New("--socket needs a path")
			}
			socket, args = args[1], args[2:]
			continue
		case len(a) > 9 && a[:9] == "--socket=":
			socket, args = a[9:], args[1:]
			continue
		}
		matched := false
		for _, b := range bools {
			if a == "--"+b {
				seen[b], matched = true, true
			}
		}
		if !matched {
			break
		}
		args = args[1:]
	}
	return SocketPath(socket), seen, args, nil
}
