package api

import (
	"errors"
	"fmt"
	"syscall"
)

// Step is the kernel request a refusal is about: what a FreeBSD host does
// with one ioctl(2) or sysctl(3) call. carp/bsd names it as ifconfig and
// sysctl do.
type Step uint8

// The steps of an ifconfig or sysctl command that carpd can refuse.
const (
	StepNone      Step = iota
	StepCreate         // create a carpN clone
	StepDestroy        // destroy a carpN clone
	StepSetVHID        // set a vhid's parameters (vhid, advbase, advskew, key, parent)
	StepAddAddr        // add an address
	StepDelAddr        // remove an address
	StepSetMTU         // set an interface's MTU
	StepSetUp          // set an interface up
	StepSetDown        // set an interface down
	StepGroupAttr      // change an interface group's attribute (OpenBSD's carpdemote)
	StepSysctl         // write a net.inet.carp value
)

var stepNames = [...]string{
	StepNone:      "request",
	StepCreate:    "create interface",
	StepDestroy:   "destroy interface",
	StepSetVHID:   "set vhid",
	StepAddAddr:   "add address",
	StepDelAddr:   "delete address",
	StepSetMTU:    "set mtu",
	StepSetUp:     "set up",
	StepSetDown:   "set down",
	StepGroupAttr: "set group attribute",
	StepSysctl:    "write sysctl",
}

// String is a plain description of the step, for carpd's log.
func (s Step) String() string {
	if int(s) < len(stepNames) {
		return stepNames[s]
	}
	return fmt.Sprintf("step %d", s)
}

// Reason says why a request was refused.
type Reason uint8

// The reasons for a refusal. ReasonErrno is a kernel refusal of Step with
// Errno; the others are the checks ifconfig(8) and sysctl(8) make before or
// instead of a kernel call, and name what they are about in Name or Op.
const (
	ReasonErrno         Reason = iota // Step failed with Errno
	ReasonNoInterface                 // interface Name does not exist
	ReasonCloneNameLong               // Name is too long to be cloned
	ReasonNeedsVHID                   // Op was given before any vhid
	ReasonVHIDRange                   // a vhid outside 1..255 on a physical interface
	ReasonUnknownState                // the argument of state is not init, backup or master
	ReasonUnsupported                 // Op is not an operation carpd knows
	ReasonUnknownOID                  // sysctl Name does not exist
	ReasonReadOnlyOID                 // sysctl Name cannot be written
	ReasonNodeOID                     // sysctl Name is a node, not a value
)

var reasonNames = [...]string{
	ReasonErrno:         "refused by the kernel",
	ReasonNoInterface:   "no such interface",
	ReasonCloneNameLong: "clone name too long",
	ReasonNeedsVHID:     "needs a vhid first",
	ReasonVHIDRange:     "vhid out of range",
	ReasonUnknownState:  "unknown state",
	ReasonUnsupported:   "unsupported operation",
	ReasonUnknownOID:    "unknown sysctl",
	ReasonReadOnlyOID:   "read-only sysctl",
	ReasonNodeOID:       "sysctl is a node",
}

// Error is a refusal of a command: the engine returns it, the control
// socket carries it as it is, and carp/bsd words it as FreeBSD's command
// prints it. A refused command changed nothing.
type Error struct {
	Reason Reason        `json:"reason"`
	Step   Step          `json:"step,omitempty"`
	Errno  syscall.Errno `json:"errno,omitempty"`
	// Name is the interface, group or sysctl the refusal is about, when
	// the reason names one.
	Name string `json:"name,omitempty"`
	// Op is the operation the refusal is about (ReasonNeedsVHID,
	// ReasonUnsupported).
	Op OpKind `json:"op,omitempty"`
}

// Error describes the refusal in carpd's own words (for its log); the BSD
// commands print carp/bsd's rendering instead.
func (e *Error) Error() string {
	var s string
	if e.Reason == ReasonErrno {
		s = e.Step.String() + ": " + e.Errno.Error()
	} else if int(e.Reason) < len(reasonNames) {
		s = reasonNames[e.Reason]
	} else {
		s = fmt.Sprintf("refusal %d", e.Reason)
	}
	switch {
	case e.Name != "":
		s = e.Name + ": " + s
	case e.Op != "":
		s = string(e.Op) + ": " + s
	}
	return s
}

// Refused is a kernel refusal of step with errno.
func Refused(step Step, errno syscall.Errno) *Error {
	return &Error{Reason: ReasonErrno, Step: step, Errno: errno}
}

// KernelRefusal is the refusal of step by a kernel call that failed with
// err: its errno when it carries one, EINVAL otherwise.
func KernelRefusal(step Step, err error) *Error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		errno = syscall.EINVAL
	}
	return Refused(step, errno)
}

// SaveError reports that a change took effect but could not be saved in
// the state directory; carpd keeps trying to save it. The engine returns it
// in place of nil: it is a warning, not a refusal.
type SaveError struct {
	File  string // the file not saved: STATE_DIR/config.json
	Cause string // the operating system's words for the failure, naming File
	Err   error  // what writing it failed with
}

func (e *SaveError) Error() string {
	cause := e.Cause
	if cause == "" && e.Err != nil {
		cause = e.Err.Error()
	}
	return "configuration not saved (will retry): " + cause
}

// Unwrap returns the error writing the file failed with.
func (e *SaveError) Unwrap() error { return e.Err }
