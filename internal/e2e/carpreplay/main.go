// Command carpreplay is a test tool of the namespace tests: it plays the
// attacker who captures CARP advertisements on a LAN and replays
// them later, and the least CARP master there can be (the scale
// benchmark's floor). It only ever runs inside a test's network namespace.
//
//	carpreplay capture -i IF -vhid N -n COUNT -o FILE   # save COUNT adverts of vhid N (whole IPv4 packets)
//	carpreplay send -i IF -f FILE -rate PPS -for DUR   # replay them verbatim, in a loop, then exit
//	carpreplay floor -i IF,IF.. -vhids N -pass P -n TOTAL # advertise vhids 1..N on each IF, TOTAL in all, until killed
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/net/ipv4"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: carpreplay capture|send ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "capture":
		err = capture(os.Args[2:])
	case "send":
		err = send(os.Args[2:])
	case "floor":
		err = floor(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "carpreplay:", err)
		os.Exit(1)
	}
}

func open(ifname string) (*ipv4.RawConn, *net.Interface, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, nil, err
	}
	c, err := net.ListenPacket("ip4:112", "0.0.0.0")
	if err != nil {
		return nil, nil, err
	}
	r, err := ipv4.NewRawConn(c)
	if err != nil {
		return nil, nil, err
	}
	return r, ifi, nil
}

func capture(args []string) error {
	fs := flag.NewFlagSet("capture", flag.ExitOnError)
	ifname := fs.String("i", "eth0", "interface")
	vhid := fs.Int("vhid", 1, "vhid to capture")
	n := fs.Int("n", 1, "adverts to capture")
	out := fs.String("o", "", "output file")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after")
	_ = fs.Parse(args)
	r, ifi, err := open(*ifname)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.JoinGroup(ifi, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	_ = r.SetReadDeadline(time.Now().Add(*timeout))
	var file []byte
	buf := make([]byte, 1500)
	for got := 0; got < *n; {
		h, p, _, err := r.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("read after %d adverts: %w", got, err)
		}
		if len(p) < 36 || p[0] != 0x21 || int(p[1]) != *vhid {
			continue
		}
		hb, err := h.Marshal()
		if err != nil {
			return err
		}
		pkt := append(hb, p...)
		file = binary.BigEndian.AppendUint16(file, uint16(len(pkt)))
		file = append(file, pkt...)
		got++
	}
	return os.WriteFile(*out, file, 0o600)
}

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	ifname := fs.String("i", "eth0", "interface")
	in := fs.String("f", "", "capture file")
	rate := fs.Float64("rate", 2, "packets per second")
	dur := fs.Duration("for", 10*time.Second, "how long to replay")
	_ = fs.Parse(args)
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var pkts [][]byte
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return errors.New("truncated capture file")
		}
		pkts = append(pkts, b[2:2+n])
		b = b[2+n:]
	}
	if len(pkts) == 0 {
		return errors.New("empty capture")
	}
	r, ifi, err := open(*ifname)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.SetMulticastInterface(ifi); err != nil {
		return err
	}
	end := time.Now().Add(*dur)
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	defer tick.Stop()
	sent := 0
	for i := 0; time.Now().Before(end); i++ {
		pkt := pkts[i%len(pkts)]
		h, err := ipv4.ParseHeader(pkt)
		if err != nil {
			return err
		}
		if err := r.WriteTo(h, pkt[h.Len:], &ipv4.ControlMessage{IfIndex: ifi.Index}); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		sent++
		<-tick.C
	}
	fmt.Printf("replayed %d packets\n", sent)
	return nil
}
