// Package carp is the wire protocol and state machine of FreeBSD's Common
// Address Redundancy Protocol (CARP, IP protocol 112), written so that a
// Linux engine interoperates with FreeBSD, OpenBSD, pfSense/OPNsense and
// ucarp.
//
// The package is pure: it never reads a clock and never touches the operating
// system. Packets come in as bytes, time comes in as time.Time arguments, and
// every entry point returns what the caller must do (send an advert, log a
// transition). That is what lets the state machine be tested to the
// microsecond and lets many engines run against each other in memory.
//
// The rules implemented here are those of FreeBSD 14's sys/netinet/ip_carp.c
// and ip_carp.h, as carp(4) describes them:
//
//   - the 36-byte advertisement and its checksum without pseudo-header
//     (Header, Checksum, BuildAdvert);
//   - the HMAC-SHA1 over version, type, vhid, the sorted virtual addresses and
//     the counter (Key, MAC, VerifyMAC, Counter);
//   - receive validation in FreeBSD's order with its carpstats counters
//     (Validate, Stats, Drop);
//   - the timers in FreeBSD's integer arithmetic (Skew, AdvInterval,
//     MasterDown) and the INIT/BACKUP/MASTER machine (Machine).
package carp
