//go:build !linux

package main

import (
	"errors"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// kernelLinks is Linux's alone.
func kernelLinks() ([]api.LinkStatus, error) {
	return nil, errors.New("not supported on this system")
}
