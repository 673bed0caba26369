package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/control"
)

// jsonStatus is `ifconfig-carp --json [-k] [IFACE]`: the machine-readable
// status (api.Report, docs/status.schema.json) of every vhid, or of those
// configured on IFACE. -k adds the keys, for root only, as ifconfig -k.
func jsonStatus(socket string, args []string, out io.Writer) error {
	showKeys := len(args) > 0 && args[0] == "-k"
	if showKeys {
		args = args[1:]
	}
	if len(args) > 1 {
		return fmt.Errorf("usage: ifconfig-carp --json [-k] [interface]")
	}
	req := control.Request{Op: control.OpStatus, Detail: true, ShowKeys: showKeys}
	if len(args) == 1 {
		req.Iface = args[0]
	}
	c := control.Client{Path: socket}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	if err := resp.StatusErr(); err != nil {
		return err
	}
	st := *resp.Status
	if req.Iface != "" && len(st.Links) == 0 && len(st.Clones) == 0 && len(st.VHIDs) == 0 {
		return fmt.Errorf("interface %s does not exist", req.Iface)
	}
	r, err := api.NewReport(st, time.Now())
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
