package engine

import "github.com/bsdcarp/bsdcarp/kernelshim/memkernel"

// The in-memory kernel the tests run on is a Kernel.
var _ Kernel = (*memkernel.Memory)(nil)
