// Package bsd is the BSD command-line text layer of bsdcarp: it parses
// FreeBSD/OpenBSD ifconfig and sysctl command lines into requests (carp/api)
// and prints carpd's state and refusals exactly as a BSD host prints them.
// Every message text of ifconfig(8) and sysctl(8) that bsdcarp prints is
// in this package, once.
//
// Error conventions:
//
//   - *api.Error (carpd's refusals, and the same checks made here before a
//     request is sent) and *CommandError: the command prints "ifconfig: " or
//     "sysctl: " followed by Text(err) and a newline, and exits 1.
//   - *UsageError: the command prints Text verbatim to stderr (it already
//     carries any prefix and the trailing newline) and exits 1.
//
// The package uses only the standard library and carp/api.
package bsd

import (
	"errors"
	"strconv"
	"strings"
	"syscall"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// UsageError is a command-line error that BSD reports through getopt(3) and
// usage(): several lines, not all of them prefixed by the program name.
type UsageError struct {
	Text string // exact stderr text, newline-terminated
}

func (e *UsageError) Error() string { return e.Text }

// CommandError is a refusal of the command line itself (a bad value, a
// missing argument), in the words the BSD command prints after its
// "ifconfig: " or "sysctl: " prefix.
type CommandError struct {
	Msg string
}

func (e *CommandError) Error() string { return e.Msg }

// cliErr builds the error the command prints after its "ifconfig: " prefix.
func cliErr(msg string) error { return &CommandError{Msg: msg} }

// Text is what a BSD command prints after its "ifconfig: " or "sysctl: "
// prefix for err: FreeBSD's words for a refusal carpd (or the parser)
// reports as an *api.Error, the message of a *CommandError, and err's own
// text for anything else ("" for nil).
func Text(err error) string {
	if err == nil {
		return ""
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return refusalText(ae)
	}
	return err.Error()
}

// refusalText words a refusal as FreeBSD's ifconfig(8), sysctl(8) and
// OpenBSD's ifconfig (carpdemote) print it.
func refusalText(e *api.Error) string {
	switch e.Reason {
	case api.ReasonErrno:
		return stepText(e)
	case api.ReasonNoInterface:
		return "interface " + e.Name + " does not exist"
	case api.ReasonCloneNameLong:
		// ifconfig's check before SIOCIFCREATE2.
		return e.Name + ": cloning name too long"
	case api.ReasonNeedsVHID:
		return opWord(e.Op) + " requires vhid"
	case api.ReasonVHIDRange:
		return "vhid must be greater than 0 and less than 255"
	case api.ReasonUnknownState:
		return "unknown state"
	case api.ReasonUnsupported:
		return "unsupported operation " + strconv.Quote(string(e.Op))
	case api.ReasonUnknownOID:
		return "unknown oid '" + e.Name + "'"
	case api.ReasonReadOnlyOID:
		return "oid '" + e.Name + "' is read only"
	case api.ReasonNodeOID:
		// CTLTYPE_OPAQUE is type 5.
		return "oid '" + e.Name + "' is type 5, cannot set that"
	}
	return e.Error()
}

// stepText words a kernel refusal as ifconfig reports the failing ioctl:
// the flag and address ioctls through its Perror(), the MTU through err(3),
// sysctl(8) with the bare strerror after its own "NAME=VALUE: ".
func stepText(e *api.Error) string {
	switch e.Step {
	case api.StepCreate:
		return "SIOCIFCREATE2: " + strerror(e.Errno)
	case api.StepDestroy:
		return "SIOCIFDESTROY: " + strerror(e.Errno)
	case api.StepSetVHID:
		return "SIOCSVH: " + strerror(e.Errno)
	case api.StepAddAddr:
		return "ioctl (SIOCAIFADDR): " + perror(e.Errno)
	case api.StepDelAddr:
		return "ioctl (SIOCDIFADDR): " + perror(e.Errno)
	case api.StepSetMTU:
		return "ioctl SIOCSIFMTU (set mtu): " + strerror(e.Errno)
	case api.StepSetUp:
		return "up: " + perror(e.Errno) // setifflags(): Perror(vname)
	case api.StepSetDown:
		return "down: " + perror(e.Errno)
	case api.StepGroupAttr:
		return e.Name + ": SIOCSIFGATTR: " + strerror(e.Errno)
	}
	return strerror(e.Errno)
}

// opWord is the ifconfig keyword of an operation, as its messages name it.
func opWord(k api.OpKind) string {
	if k == api.OpPass {
		return "passwd"
	}
	return string(k)
}

// freebsdErrors are FreeBSD libc's strerror(3) texts (lib/libc/gen/errlst.c)
// for the errnos a Linux kernel answers carpd's requests with, where
// glibc's words differ or matter to scripts.
var freebsdErrors = map[syscall.Errno]string{
	syscall.EPERM:         "Operation not permitted",
	syscall.ENOENT:        "No such file or directory",
	syscall.ENXIO:         "Device not configured",
	syscall.ENOMEM:        "Cannot allocate memory",
	syscall.EACCES:        "Permission denied",
	syscall.EBUSY:         "Device busy",
	syscall.EEXIST:        "File exists",
	syscall.ENODEV:        "Operation not supported by device",
	syscall.EINVAL:        "Invalid argument",
	syscall.ENOSPC:        "No space left on device",
	syscall.ERANGE:        "Result too large",
	syscall.EOPNOTSUPP:    "Operation not supported",
	syscall.EAFNOSUPPORT:  "Address family not supported by protocol family",
	syscall.EADDRINUSE:    "Address already in use",
	syscall.EADDRNOTAVAIL: "Can't assign requested address",
	syscall.ENETDOWN:      "Network is down",
	syscall.ENOBUFS:       "No buffer space available",
}

// strerror is strerror(3) of errno as FreeBSD's libc words it; an errno
// it has no entry for gets the Linux text, capitalised as BSD's are.
func strerror(errno syscall.Errno) string {
	if s, ok := freebsdErrors[errno]; ok {
		return s
	}
	s := errno.Error()
	if errno == 0 || s == "" {
		return "Invalid argument"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// perror is FreeBSD ifconfig's Perror(): its own words for EPERM and ENXIO,
// strerror(3) for the rest.
func perror(errno syscall.Errno) string {
	switch errno {
	case syscall.EPERM:
		return "permission denied"
	case syscall.ENXIO:
		return "no such interface"
	}
	return strerror(errno)
}
