package events

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/engine"
)

// DefaultTimeout is how long an action may run before it is killed.
const DefaultTimeout = 30 * time.Second

// DefaultShellQueue is how many commands may wait for the shell.
const DefaultShellQueue = 256

// Command is one action, already expanded by its caller (devd.conf's
// $variables are the caller's business): Cmd runs as `/bin/sh -c Cmd`,
// with Args as $0, $1, ... when given, and Env as its whole environment
// when not nil (nil: carpd's own).
type Command struct {
	Cmd  string
	Args []string
	Env  []string
	// What names the command in the log (e.g. the event it acts on);
	// empty: the command itself.
	What string
}

// ShellOptions configure a Shell.
type ShellOptions struct {
	// Timeout kills a command (and the processes of its process group)
	// that runs longer; 0 means DefaultTimeout.
	Timeout time.Duration
	// Queue is how many commands may wait; 0 means DefaultShellQueue.
	Queue int
	// Stdout and Stderr of the commands; nil discards.
	Stdout, Stderr *os.File
	// Log receives the exit status of every command and the overflows.
	Log *log.Logger
	// Shell is the shell, /bin/sh by default (tests may point elsewhere).
	Shell string
}

// Shell runs commands through /bin/sh -c one at a time, in the order they
// were queued, each with a timeout: the keepalived notify-script lesson
// (never concurrently, never reordered). Enqueue never blocks: a full
// queue drops the command, counts it and logs (at most once a second).
type Shell struct {
	opts    ShellOptions
	queue   chan Command
	dropped atomic.Uint64

	mu      sync.Mutex
	lastLog time.Time

	stop      chan struct{}
	drain     chan struct{} // closed by CloseAfter: run what is queued, then end
	done      chan struct{}
	once      sync.Once
	drainOnce sync.Once
}

// NewShell starts a shell runner; Close stops it.
func NewShell(opts ShellOptions) *Shell {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultShellQueue
	}
	if opts.Shell == "" {
		opts.Shell = "/bin/sh"
	}
	if opts.Log == nil {
		opts.Log = log.New(discard{}, "", 0)
	}
	s := &Shell{opts: opts, queue: make(chan Command, opts.Queue), stop: make(chan struct{}),
		drain: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Enqueue queues c behind the commands already waiting and returns at
// once; false means the queue was full and c was dropped.
func (s *Shell) Enqueue(c Command) bool {
	select {
	case <-s.stop:
		return false
	default:
	}
	select {
	case s.queue <- c:
		return true
	default:
	}
	n := s.dropped.Add(1)
	s.mu.Lock()
	now := time.Now()
	logIt := s.lastLog.IsZero() || now.Sub(s.lastLog) >= time.Second
	if logIt {
		s.lastLog = now
	}
	s.mu.Unlock()
	if logIt {
		s.opts.Log.Printf("carpd: action queue full: %q dropped (%d actions dropped so far)", c.name(), n)
	}
	return false
}

// Dropped is the number of commands dropped because the queue was full.
func (s *Shell) Dropped() uint64 { return s.dropped.Load() }

// Close stops taking commands, kills the running one and returns when it
// is gone. Queued commands are not run.
func (s *Shell) Close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// CloseAfter lets the queued commands run (the actions of carpd's own
// hand-over: its vhids going to INIT) for up to grace, then closes.
func (s *Shell) CloseAfter(grace time.Duration) {
	s.drainOnce.Do(func() { close(s.drain) })
	select {
	case <-s.done:
	case <-time.After(grace):
		s.Close()
	}
}

func (c Command) name() string {
	if c.What != "" {
		return c.What
	}
	return c.Cmd
}

func (s *Shell) loop() {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for {
		select {
		case <-s.stop:
			return
		case c := <-s.queue:
			s.run(ctx, c)
		case <-s.drain:
			select {
			case c := <-s.queue:
				s.run(ctx, c)
			default:
				return // drained
			}
		}
	}
}

// run executes one command and logs how it ended.
func (s *Shell) run(parent context.Context, c Command) {
	ctx, cancel := context.WithTimeout(parent, s.opts.Timeout)
	defer cancel()
	argv := []string{"-c", c.Cmd}
	argv = append(argv, c.Args...)
	cmd := exec.CommandContext(ctx, s.opts.Shell, argv...)
	cmd.Env = c.Env
	if s.opts.Stdout != nil {
		cmd.Stdout = s.opts.Stdout
	}
	if s.opts.Stderr != nil {
		cmd.Stderr = s.opts.Stderr
	}
	// Its own process group: a timeout kills what the shell started too.
	// Should carpd die without stopping it, the kernel kills the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	var exit *exec.ExitError
	switch {
	case err == nil:
		s.opts.Log.Printf("carpd: action %q: exit 0 (%v)", c.name(), took)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.opts.Log.Printf("carpd: action %q: killed after the %v timeout", c.name(), s.opts.Timeout)
	case parent.Err() != nil:
		s.opts.Log.Printf("carpd: action %q: killed: carpd stopping", c.name())
	case errors.As(err, &exit):
		s.opts.Log.Printf("carpd: action %q: %s (%v)", c.name(), exitText(exit), took)
	default:
		s.opts.Log.Printf("carpd: action %q: %v", c.name(), fmt.Errorf("run %s: %w", s.opts.Shell, err))
	}
}

func exitText(e *exec.ExitError) string {
	if ws, ok := e.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", e.ExitCode())
}

// Actions returns a Runner that queues, for every event, the commands
// match gives for it (nil: none), in order, on s. It is the plug for a
// devd.conf rule set: match does the matching and $variable expansion,
// s the running.
func (s *Shell) Actions(match func(ev engine.Event) []Command) Runner {
	return RunnerFunc(func(ev engine.Event) {
		for _, c := range match(ev) {
			s.Enqueue(c)
		}
	})
}
