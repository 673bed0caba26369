package main

import (
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
	"github.com/bsdcarp/bsdcarp/carp/control"
)

// renderText answers a status command's request for its text
// (control.Request.Text) with what the command would print from the
// status: the command then copies bytes instead of decoding and
// formatting a status (255 vhids are ~33 KB of JSON).
func renderText(cmd string, args []string, root bool, st api.Status) (control.Rendered, bool) {
	r, ok := bsd.Render(cmd, args, root, st)
	return control.Rendered(r), ok
}
