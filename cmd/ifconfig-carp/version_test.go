package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	for _, argv0 := range []string{"ifconfig-carp", "/usr/local/libexec/bsdcarp/bsd/ifconfig"} {
		var out, errOut bytes.Buffer
		code := run([]string{argv0, "--version"}, &out, &errOut)
		if code != 0 || errOut.Len() != 0 || !strings.HasPrefix(out.String(), "ifconfig-carp ") || !strings.HasSuffix(out.String(), "\n") || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("%s --version: exit %d, stdout %q, stderr %q; want one line \"ifconfig-carp VERSION\"", argv0, code, out.String(), errOut.String())
		}
	}
}
