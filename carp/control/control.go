// Package control is carpd's Unix-socket protocol: one JSON request and one
// JSON response per connection, each at most MaxMessage bytes. Anyone may
// read the status (without keys); only root may change anything, which the
// server checks with the peer's kernel credentials (SO_PEERCRED). The same
// credentials decide, right after accept, whether a connection is served at
// all: root has slots of its own, other users are capped per uid and get
// little time (see Limits), so no local user can lock root out.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"golang.org/x/sys/unix"
)

// Version of the protocol; a server refuses any other.
const Version = 2

// MaxMessage bounds every request and response read from the socket: the
// detailed status of 1,020 vhids (about 290 bytes each, --json) fits three
// times over.
const MaxMessage = 1 << 20

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
	Version  int                  `json:"v"`
	Op       string               `json:"op"`
	Ifconfig *api.IfconfigRequest `json:"ifconfig,omitempty"`
	ShowKeys bool                 `json:"show_keys,omitempty"`
	OID      string               `json:"oid,omitempty"`
	Value    int64                `json:"value,omitempty"`
	// Iface narrows an OpStatus answer to one interface: the links,
	// clones and vhids of that BSD name (knobs and stats as always), all
	// that "ifconfig IF" prints. NoIfaces leaves links, clones and vhids
	// out: sysctl and netstat print only knobs and stats. Both only
	// shorten the answer (255 vhids are ~30 KB of JSON): a server that does
	// not know them sends everything, which prints the same.
	Iface    string `json:"iface,omitempty"`
	NoIfaces bool   `json:"no_ifaces,omitempty"`
	// Detail asks for the per-vhid details (api.VHIDDetail) and the
	// demotion's parts: the JSON status of `ifconfig-carp --json`. A server
	// that does not know it answers without them (Response.Status has no
	// Demotion), which the client reports rather than printing zeros.
	Detail bool `json:"detail,omitempty"`
	// Text asks for the text a status command prints instead of the
	// status it is made from: the command's name for Server.Render
	// (carp/bsd's TextIfconfig, TextSysctl, TextNetstat) and Args, its
	// BSD words. The other fields still choose the status, as without
	// Text. carpd renders the text on the connection's goroutine, never
	// on the engine's loop, and answers with Response.Text; a server
	// that does not know Text (or declines it: a change, sysctl -f)
	// answers with the status, which the command formats itself into
	// the same text.
	Text string   `json:"text,omitempty"`
	Args []string `json:"args,omitempty"`
}

// Error codes of a Response.
const (
	CodeRefused = "refused" // Refusal says why; carp/bsd words it
	CodePerm    = "eperm"   // the caller is not root
	CodeFail    = "fail"    // anything else
)

// Response is carpd's answer. Error is carpd's own text for any failure
// (for logs and for failures without a Refusal).
type Response struct {
	Version int    `json:"v"`
	Code    string `json:"code,omitempty"`
	Error   string `json:"error,omitempty"`
	// Refusal is set with CodeRefused: the request was refused and changed
	// nothing.
	Refusal *api.Error  `json:"refusal,omitempty"`
	Status  *api.Status `json:"status,omitempty"`
	Old     int64       `json:"old,omitempty"`
	New     int64       `json:"new,omitempty"`
	// Warning is set when a change took effect with a problem the command
	// prints on stderr (the configuration could not be saved yet); the
	// command still succeeds.
	Warning string `json:"warning,omitempty"`
	// Text is the answer to Request.Text: what the command prints on
	// stdout, then Stderr on stderr, and it exits with Exit. When the
	// response also has an error (Err), the command prints Text and then
	// the error, and exits 1.
	Text   *string `json:"text,omitempty"`
	Stderr string  `json:"stderr,omitempty"`
	Exit   int     `json:"exit,omitempty"`
}

// Rendered is the text of a status command, the answer to Request.Text.
type Rendered struct {
	Stdout, Stderr string
	Exit           int
	// Err, when set, is printed by the command after Stdout, in its BSD
	// words (a *api.Error keeps its kind on the way), and it exits 1.
	Err error
}

// Renderer turns a status into the text the command cmd prints for the BSD
// words args, for a caller who is root or not; ok is false when it does
// not render that line (the server then answers with the status).
type Renderer func(cmd string, args []string, root bool, st api.Status) (r Rendered, ok bool)

// Engine is what the server needs of carpd's engine.
type Engine interface {
	Ifconfig(ctx context.Context, req api.IfconfigRequest) error
	Status(ctx context.Context, q api.StatusQuery) (api.Status, error)
	SetSysctl(ctx context.Context, oid string, v int64) (old, now int64, err error)
}

// Server answers requests on a Unix socket.
type Server struct {
	eng    Engine
	ln     *net.UnixListener // the socket every user may reach
	rootLn *net.UnixListener // RootSocket(path): mode 0600, root's own way in
	lim    Limits
	adm    *admission
	rep    *reporter
	closed atomic.Bool
	mu     sync.Mutex
	lfs    []*os.File // Serve's own descriptors of the listening sockets
	// Logf reports connection-level problems, rate-limited (see Limits);
	// nil discards them. Set it before Serve.
	Logf func(format string, args ...any)
	// Render answers a status request with Text; nil answers every
	// status request with the status. Set it before Serve.
	Render Renderer
}

// RootSocket is the path of root's own control socket beside path: mode
// 0600, so that no other user can connect, queue or flood there. Whatever
// other users do to the shared socket, root's commands go in through this
// one (Client prefers it when run as root).
func RootSocket(path string) string { return path + ".root" }

// Listen creates the socket at path, for every user, and root's own at
// RootSocket(path). A stale socket file is removed only if nothing answers
// on it, so a second carpd cannot steal a live one's socket.
func Listen(path string, eng Engine) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control: socket dir: %w", err)
	}
	// Everyone may connect (status for non-root); writes are checked per
	// request. Root's socket is root's alone.
	ln, err := listen(path, 0o666)
	if err != nil {
		return nil, err
	}
	rootLn, err := listen(RootSocket(path), 0o600)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{eng: eng, ln: ln, rootLn: rootLn}
	s.SetLimits(DefaultLimits())
	return s, nil
}

func listen(path string, mode os.FileMode) (*net.UnixListener, error) {
	if c, err := net.DialTimeout("unix", path, probeWait); err == nil {
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
	// Until this chmod the socket has the umask's mode: a user who connects
	// to root's socket in that instant is still only served as itself.
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: chmod %s: %w", path, err)
	}
	return ln, nil
}

// SetLimits replaces DefaultLimits; call it before Serve.
func (s *Server) SetLimits(lim Limits) {
	s.lim = lim
	s.adm = newAdmission(lim)
	s.rep = newReporter(lim, s.log)
}

// log writes one (already rate-limited) line through Logf.
func (s *Server) log(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Deadlines of one control exchange. The engine answers a request between
// two turns of its event loop, which take milliseconds, so only a stuck
// carpd comes near them.
const (
	// engineWait bounds how long the server waits for the engine to carry
	// out one request.
	engineWait = 5 * time.Second
	// rootReply bounds how long the server tries to write root's answer,
	// and a Client without a Timeout waits as long for the whole exchange:
	// twice engineWait, so an answer the engine gives at its deadline still
	// arrives.
	rootReply = 2 * engineWait
	// probeWait bounds the dial that checks whether something already
	// listens on a socket path: a live listener accepts at once.
	probeWait = time.Second
)

// acceptBackoff is how long Serve waits after accept(2) failed for want of
// descriptors or memory, so that it does not spin while the shortage lasts.
const acceptBackoff = 50 * time.Millisecond

// Serve accepts connections until Close, on both sockets. One goroutine
// accepts on each; each connection costs it accept(2), one getsockopt(2)
// for the peer's credentials and, when refused, close(2): it never reads,
// writes or waits for a client, so a slow or hostile one cannot hold up the
// next. The shared socket accepts at most Limits.AcceptRate connections a
// second: beyond that they wait in the kernel's listen queue, and once it
// is full their connect(2) fails, which costs carpd nothing. Root's socket
// has no such cap.
func (s *Server) Serve() error {
	defer s.rep.close()
	rootErr := make(chan error, 1)
	go func() {
		err := s.serve(s.rootLn, 0)
		if err != nil {
			// Nobody accepts there any more: close it, so that root's
			// commands fall back to the shared socket at once instead
			// of waiting in a queue.
			s.rootLn.Close()
		}
		rootErr <- err
	}()
	err := s.serve(s.ln, s.lim.AcceptRate)
	if err != nil {
		s.Close()
	}
	if rerr := <-rootErr; err == nil {
		err = rerr
	}
	return err
}

// serve is the accept loop of one listening socket, taking at most rate
// connections a second (0: no cap).
func (s *Server) serve(ln *net.UnixListener, rate int) error {
	// net's listener only accepts through its own (allocating) path; a
	// duplicate of its descriptor, polled by the runtime, can be read raw.
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil
	}
	lf, err := ln.File()
	if err == nil {
		s.lfs = append(s.lfs, lf)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("control: listener: %w", err)
	}
	// Should serve fail, the socket must not stay open through lf with
	// nobody accepting.
	defer lf.Close()
	rc, err := lf.SyscallConn()
	if err != nil {
		return fmt.Errorf("control: listener: %w", err)
	}
	bucket := acceptBucket{rate: rate}
	for {
		var fatal error
		var pause time.Duration
		err := rc.Read(func(fd uintptr) bool {
			for !s.closed.Load() {
				if pause = bucket.wait(time.Now()); pause > 0 {
					return true
				}
				nfd, errno := accept4(int(fd))
				switch errno {
				case 0:
					bucket.take()
					s.admit(nfd)
				case syscall.EAGAIN:
					return false // wait until the next connection arrives
				case syscall.EINTR:
				case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
					s.rep.note(event{kind: evAccept}, errno)
					pause = acceptBackoff
					return true
				case syscall.EBADF, syscall.EINVAL, syscall.ENOTSOCK:
					fatal = errno // the listening socket itself is broken
					return true
				default:
					// An error of that one pending connection
					// (ECONNABORTED and the like): on to the next.
					s.rep.note(event{kind: evAccept}, errno)
				}
			}
			return true
		})
		switch {
		case s.closed.Load():
			return nil
		case err != nil:
			return fmt.Errorf("control: accept: %w", err)
		case fatal != nil:
			return fmt.Errorf("control: accept: %w", fatal)
		case pause > 0:
			time.Sleep(pause)
		}
	}
}

// acceptBucket caps the connections an accept loop takes per second, in
// bursts of up to a tenth of a second's worth. Owned by one accept loop.
type acceptBucket struct {
	rate   int // per second; 0: no cap
	tokens float64
	at     time.Time
}

// wait returns how long to pause before the next accept (0: go on).
func (b *acceptBucket) wait(now time.Time) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	burst := max(float64(b.rate)/10, 1)
	if b.at.IsZero() {
		b.tokens, b.at = burst, now
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*float64(b.rate))
	b.at = now
	if b.tokens >= 1 {
		return 0
	}
	// Empty: sleep until half a burst is back rather than wake up for
	// every single connection.
	return time.Duration((burst/2 - b.tokens) / float64(b.rate) * float64(time.Second))
}

func (b *acceptBucket) take() {
	if b.rate > 0 {
		b.tokens--
	}
}

// accept4 takes one pending connection off the listening socket fd without
// asking for the peer's address (nothing to allocate), non-blocking, so
// that os.NewFile hands it to the runtime's poller as it is.
func accept4(fd int) (int, syscall.Errno) {
	nfd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0, 0)
	return int(nfd), errno
}

// admit decides on the freshly accepted descriptor nfd: a refused connection
// is closed at once and only counted; an admitted one is served by its own
// goroutine, whose number the limits bound.
func (s *Server) admit(nfd int) {
	cred, err := unix.GetsockoptUcred(nfd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		unix.Close(nfd)
		s.rep.note(event{kind: evBadCreds}, err)
		return
	}
	uid := cred.Uid
	if v := s.adm.admit(uid, time.Now()); v != admitted {
		unix.Close(nfd)
		s.rep.note(event{kind: evRefused, why: v, uid: uid}, nil)
		return
	}
	// The descriptor is served as an *os.File: net.FileConn would cost a
	// dup(2), five more system calls and a close(2) per connection, for
	// nothing a request needs (reads, writes and deadlines are the same).
	c := os.NewFile(uintptr(nfd), "control")
	go func() {
		defer s.adm.release(uid)
		// A bug in serving one request must not take the engine down
		// without its hand-over: that connection is closed, nothing else.
		defer func() {
			if r := recover(); r != nil {
				c.Close()
				s.rep.note(event{kind: evReply, uid: uid}, fmt.Errorf("panic: %v", r))
			}
		}()
		s.handle(c, uid)
	}()
}

// Close stops accepting and removes the socket file. Connections being
// served finish on their own deadlines.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	for _, lf := range s.lfs {
		lf.Close()
	}
	rerr := s.rootLn.Close()
	if err := s.ln.Close(); err != nil {
		return err
	}
	return rerr
}

func (s *Server) handle(c *os.File, uid uint32) {
	defer c.Close()
	// A request is one short line: a client that does not send it promptly
	// loses its slot, and users other than root get much less time. The
	// reply may wait for the engine a little longer.
	idle, reply := s.lim.RootIdle, rootReply
	if uid != 0 {
		idle, reply = s.lim.UserIdle, s.lim.UserReply
	}
	_ = c.SetReadDeadline(time.Now().Add(idle))
	var resp Response
	var req Request
	err := readMessage(c, &req)
	switch {
	case errors.Is(err, io.EOF):
		return // the client left (or only checked that carpd listens)
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.rep.note(event{kind: evIdle, uid: uid}, nil)
		resp = Response{Code: CodeFail, Error: err.Error()}
	case err != nil:
		resp = Response{Code: CodeFail, Error: err.Error()}
	default:
		resp = s.do(req, uid)
	}
	resp.Version = Version
	_ = c.SetWriteDeadline(time.Now().Add(reply))
	msg, werr := appendResponse(nil, resp)
	if werr == nil {
		_, werr = c.Write(msg)
	}
	if werr != nil && err == nil {
		// It asked and did not take the answer.
		s.rep.note(event{kind: evReply, uid: uid}, werr)
	}
}

// do carries out one request of uid.
func (s *Server) do(req Request, uid uint32) Response {
	if req.Version != Version {
		return Response{Code: CodeFail, Error: fmt.Sprintf("control: protocol version %d, want %d", req.Version, Version)}
	}
	root := uid == 0
	ctx, cancel := context.WithTimeout(context.Background(), engineWait)
	defer cancel()
	switch req.Op {
	case OpStatus:
		st, err := s.eng.Status(ctx, api.StatusQuery{ShowKeys: req.ShowKeys && root, Iface: req.Iface, NoIfaces: req.NoIfaces, Detail: req.Detail})
		if err != nil {
			return errResponse(err)
		}
		if req.Text != "" && s.Render != nil {
			if r, ok := s.Render(req.Text, req.Args, root, st); ok {
				resp := Response{Text: &r.Stdout, Stderr: r.Stderr, Exit: r.Exit}
				if r.Err != nil {
					e := errResponse(r.Err)
					resp.Code, resp.Error, resp.Refusal = e.Code, e.Error, e.Refusal
				}
				return resp
			}
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
	var se *api.SaveError
	if errors.As(err, &se) {
		return se.Error(), true
	}
	return "", false
}

func errResponse(err error) Response {
	var ae *api.Error
	if errors.As(err, &ae) {
		return Response{Code: CodeRefused, Error: ae.Error(), Refusal: ae}
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
	line, err := readLine(r, 4096)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("control: decode: %w", err)
	}
	return nil
}

// readLine reads one line of at most MaxMessage bytes, newline included,
// into a buffer of size bytes to begin with (doubled when it fills).
func readLine(r io.Reader, size int) ([]byte, error) {
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		lim := min(cap(buf), MaxMessage)
		if len(buf) >= lim {
			return nil, fmt.Errorf("control: message exceeds %d bytes", MaxMessage)
		}
		n, err := r.Read(buf[len(buf):lim])
		if i := bytes.IndexByte(buf[len(buf):len(buf)+n], '\n'); i >= 0 {
			return buf[:len(buf)+i+1], nil
		}
		buf = buf[:len(buf)+n]
		if err != nil {
			return nil, fmt.Errorf("control: read: %w", err)
		}
	}
}

// Client talks to carpd.
type Client struct {
	Path    string
	Timeout time.Duration
}

// ErrNoEngine means nothing listens on the socket.
var ErrNoEngine = errors.New("carpd is not running")

// DialRetry is how long Client.Do keeps trying to connect while carpd's
// listen queue is full (EAGAIN): a flood of connections from another user
// only delays root's command, it does not fail it.
const DialRetry = time.Second

// Do sends one request and waits for the response. It reports ErrNoEngine
// at once when the socket file is missing or nothing listens on it.
func (c Client) Do(req Request) (Response, error) {
	req.Version = Version
	to := c.Timeout
	if to == 0 {
		to = rootReply
	}
	conn, err := c.dial(to)
	if err != nil {
		return Response{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(to))
	msg, err := appendRequest(nil, req)
	if err != nil {
		return Response{}, err
	}
	if _, err := conn.Write(msg); err != nil {
		return Response{}, c.closedEarly(err)
	}
	// A status answer is read in one go: ifconfig em0 with 255 vhids
	// is ~38 KB.
	line, err := readLine(conn, 64<<10)
	if err != nil {
		return Response{}, c.closedEarly(err)
	}
	var resp Response
	if err := decodeResponse(line, &resp); err != nil {
		return Response{}, err
	}
	return resp, nil
}

// dial connects, retrying for up to DialRetry while the listen queue is
// full. Root goes in through its own socket (RootSocket) when carpd has one.
func (c Client) dial(to time.Duration) (net.Conn, error) {
	root := os.Geteuid() == 0
	if root {
		if conn, err := net.DialTimeout("unix", RootSocket(c.Path), to); err == nil {
			if servedByRoot(conn) {
				return conn, nil
			}
			conn.Close()
		}
	}
	conn, err := c.dialShared(to)
	if err == nil && root && !servedByRoot(conn) {
		// A socket in a directory others can write to may be anybody's:
		// root's requests carry keys.
		conn.Close()
		return nil, fmt.Errorf("control: %s is not served by root: not sending to it", c.Path)
	}
	return conn, err
}

// servedByRoot reports whether the process listening on conn's other end
// runs as root, as carpd does.
func servedByRoot(conn net.Conn) bool {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	return cred.Uid == 0
}

// dialShared connects to the socket every user shares, retrying while its
// listen queue is full.
func (c Client) dialShared(to time.Duration) (net.Conn, error) {
	start := time.Now()
	pause := time.Millisecond
	for {
		conn, err := net.DialTimeout("unix", c.Path, to)
		switch {
		case err == nil:
			return conn, nil
		case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("%s: %w", c.Path, ErrNoEngine)
		case !errors.Is(err, syscall.EAGAIN) || time.Since(start)+pause > DialRetry:
			return nil, fmt.Errorf("control: dial %s: %w", c.Path, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// ErrClosedEarly means carpd closed the connection without an answer, which
// is what it does when the caller's user is over its connection limit
// (carpd(8), "Control socket limits").
var ErrClosedEarly = errors.New("carpd closed the connection without answering (too many connections from this user?)")

// closedEarly words a connection carpd closed without answering.
func (c Client) closedEarly(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("%s: %w", c.Path, ErrClosedEarly)
	}
	return err
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

// Err is the failure a response reports: its Refusal when carpd refused
// the request, an error with carpd's text otherwise; nil on success.
func (r Response) Err() error {
	switch {
	case r.Refusal != nil:
		return r.Refusal
	case r.Code != "" || r.Error != "":
		if r.Error == "" {
			return fmt.Errorf("control: carpd answered %q without a reason", r.Code)
		}
		return errors.New(r.Error)
	}
	return nil
}

// StatusErr is the failure of a status request: Err, or an error when
// the response carries no status although it reports no failure.
func (r Response) StatusErr() error {
	if err := r.Err(); err != nil {
		return err
	}
	if r.Status == nil {
		return errors.New("control: carpd answered without a status")
	}
	return nil
}
