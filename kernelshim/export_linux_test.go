//go:build linux

package kernelshim

// DoIn lets the external tests (package kernelshim_test) open a Linux
// adapter inside a namespace they created.
var DoIn = doIn
