package bsd

import (
	"encoding/json"
	"errors"
	"syscall"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// printable reports whether err is a refusal the command prints after its
// prefix (not a usage error, not an internal failure).
func printable(err error) bool {
	var ae *api.Error
	var ce *CommandError
	return errors.As(err, &ae) || errors.As(err, &ce)
}

// printed reports whether err is such a refusal and its text is want.
func printed(err error, want string) bool {
	return printable(err) && Text(err) == want
}

// TestRefusalText pins FreeBSD's words for every kind of refusal carpd
// reports: the only copy of these messages is in this package.
func TestRefusalText(t *testing.T) {
	for _, c := range []struct {
		err  *api.Error
		want string
	}{
		{api.Refused(api.StepCreate, syscall.EEXIST), "SIOCIFCREATE2: File exists"},
		{api.Refused(api.StepCreate, syscall.EINVAL), "SIOCIFCREATE2: Invalid argument"},
		{api.Refused(api.StepDestroy, syscall.EINVAL), "SIOCIFDESTROY: Invalid argument"},
		{api.Refused(api.StepSetVHID, syscall.EINVAL), "SIOCSVH: Invalid argument"},
		{api.Refused(api.StepSetVHID, syscall.EEXIST), "SIOCSVH: File exists"},
		{api.Refused(api.StepAddAddr, syscall.EADDRNOTAVAIL), "ioctl (SIOCAIFADDR): Can't assign requested address"},
		{api.Refused(api.StepAddAddr, syscall.EPERM), "ioctl (SIOCAIFADDR): permission denied"},
		{api.Refused(api.StepDelAddr, syscall.EADDRNOTAVAIL), "ioctl (SIOCDIFADDR): Can't assign requested address"},
		{api.Refused(api.StepSetMTU, syscall.EINVAL), "ioctl SIOCSIFMTU (set mtu): Invalid argument"},
		{api.Refused(api.StepSetMTU, syscall.EPERM), "ioctl SIOCSIFMTU (set mtu): Operation not permitted"},
		{api.Refused(api.StepSetUp, syscall.ENXIO), "up: no such interface"},
		{api.Refused(api.StepSetDown, syscall.EBUSY), "down: Device busy"},
		{api.Refused(api.StepSetDown, syscall.EPERM), "down: permission denied"},
		{api.Refused(api.StepSysctl, syscall.EINVAL), "Invalid argument"},
		{&api.Error{Step: api.StepGroupAttr, Errno: syscall.ENOENT, Name: "internal"}, "internal: SIOCSIFGATTR: No such file or directory"},
		{&api.Error{Reason: api.ReasonNoInterface, Name: "em9"}, "interface em9 does not exist"},
		{&api.Error{Reason: api.ReasonCloneNameLong, Name: "carp1234567890123"}, "carp1234567890123: cloning name too long"},
		{&api.Error{Reason: api.ReasonNeedsVHID, Op: api.OpPass}, "passwd requires vhid"},
		{&api.Error{Reason: api.ReasonNeedsVHID, Op: api.OpAdvSkew}, "advskew requires vhid"},
		{&api.Error{Reason: api.ReasonVHIDRange}, "vhid must be greater than 0 and less than 255"},
		{&api.Error{Reason: api.ReasonUnknownState}, "unknown state"},
		{&api.Error{Reason: api.ReasonUnsupported, Op: "frob"}, `unsupported operation "frob"`},
		{&api.Error{Reason: api.ReasonUnknownOID, Name: "net.inet.carp.x"}, "unknown oid 'net.inet.carp.x'"},
		{&api.Error{Reason: api.ReasonReadOnlyOID, Name: "net.inet.carp.ifdown_demotion_factor"}, "oid 'net.inet.carp.ifdown_demotion_factor' is read only"},
		{&api.Error{Reason: api.ReasonNodeOID, Name: "net.inet.carp.stats"}, "oid 'net.inet.carp.stats' is type 5, cannot set that"},
	} {
		if got := Text(c.err); got != c.want {
			t.Errorf("%+v: %q, want %q", *c.err, got, c.want)
		}
		// The refusal survives the control socket's JSON as it is.
		if got := Text(roundTrip(t, c.err)); got != c.want {
			t.Errorf("%+v after JSON: %q, want %q", *c.err, got, c.want)
		}
	}
	if got := Text(nil); got != "" {
		t.Errorf("Text(nil) = %q", got)
	}
	if got := Text(&CommandError{Msg: "x: bad value"}); got != "x: bad value" {
		t.Errorf("CommandError: %q", got)
	}
}

func roundTrip(t *testing.T, e *api.Error) *api.Error {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back api.Error
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return &back
}
