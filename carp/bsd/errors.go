// Package bsd is the BSD command-line text layer of bsdcarp: it parses
// FreeBSD/OpenBSD ifconfig and sysctl command lines into engine requests and
// prints engine state exactly as a BSD host prints it.
//
// Error conventions:
//
//   - *engine.CLIError: the command prints "ifconfig: " or "sysctl: " followed
//     by Msg and a newline, and exits 1.
//   - *UsageError: the command prints Text verbatim to stderr (it already
//     carries any prefix and the trailing newline) and exits 1.
//
// The package uses only the standard library and the engine's types.
package bsd

import "github.com/bsdcarp/bsdcarp/carp/engine"

// UsageError is a command-line error that BSD reports through getopt(3) and
// usage(): several lines, not all of them prefixed by the program name.
type UsageError struct {
	Text string // exact stderr text, newline-terminated
}

func (e *UsageError) Error() string { return e.Text }

// cliErr builds the error the command prints after its "ifconfig: " prefix.
func cliErr(msg string) error { return &engine.CLIError{Msg: msg} }
