package main

import (
	"reflect"
	"testing"
	"time"
)

func TestCommandsKeepContinuationLines(t *testing.T) {
	rb := "# comment\nsysctl -w net.inet.carp.preempt=1\n\n#Configure\nifconfig carp0 vhid 1 pass p carpdev em0 \\\n     172.16.0.100 255.255.255.0\n"
	want := []string{
		"sysctl -w net.inet.carp.preempt=1",
		"ifconfig carp0 vhid 1 pass p carpdev em0 \\\n     172.16.0.100 255.255.255.0",
	}
	if got := commands(rb); !reflect.DeepEqual(got, want) {
		t.Errorf("commands = %q, want %q", got, want)
	}
}

func TestCountLoss(t *testing.T) {
	out := `PING 172.16.0.100 (172.16.0.100) 56(84) bytes of data.
[100.000000] 64 bytes from 172.16.0.100: icmp_seq=1 ttl=64 time=0.050 ms
[100.010000] 64 bytes from 172.16.0.100: icmp_seq=2 ttl=64 time=0.050 ms
[102.510000] 64 bytes from 172.16.0.100: icmp_seq=5 ttl=64 time=0.050 ms
[102.510100] 64 bytes from 172.16.0.100: icmp_seq=5 ttl=64 time=0.060 ms (DUP!)
[102.520000] 64 bytes from 172.16.0.100: icmp_seq=6 ttl=64 time=0.050 ms

--- 172.16.0.100 ping statistics ---
7 packets transmitted, 4 received, +1 duplicates, 42.8571% packet loss, time 2520ms
`
	l := countLoss(out)
	// Request 7 had no reply yet when ping stopped: it is not counted.
	if l.sent != 6 || l.lost != 2 || l.dups != 1 {
		t.Errorf("sent %d lost %d dups %d, want 6 2 1", l.sent, l.lost, l.dups)
	}
	if d := l.gap - 2500*time.Millisecond; d < -time.Millisecond || d > time.Millisecond || l.gapFrom != 100.01 || l.gapTo != 102.51 {
		t.Errorf("gap %v from %v to %v, want 2.5 s from 100.01 to 102.51", l.gap, l.gapFrom, l.gapTo)
	}
}
