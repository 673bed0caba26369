// Package rctest tests the boot path of bsdcarp: scripts/rc.carp, the
// systemd units in dist/systemd and the install target of the Makefile.
//
// The golden tests run scripts/rc.carp -n (dry run: it prints the commands
// it would run and runs none) under /bin/sh, dash and bash, whichever exist,
// on the rc.conf files of testdata/rc and compare stdout, stderr and the
// exit status with the golden files next to them. A case NAME is either
//
//	NAME.conf      an rc.conf, read with -f NAME.conf, plus
//	NAME.local     (optional) an rc.conf.local, read after it with -f,
//	NAME.sysctl    (optional) a sysctl.conf, read with -s,
//	NAME.loader    (optional) a loader.conf, read with -l,
//
// or NAME.args, the arguments after -n (one line, split on white space).
// The goldens are NAME.stdout, NAME.stderr and NAME.exit (the exit status;
// absent when it is 0). go test ./internal/rctest -update rewrites them;
// every golden was checked by eye against FreeBSD's network.subr.
//
// A live-mode test runs rc.carp twice against a stand-in ifconfig-carp and
// carpctl-sysctl (a shell script that logs its arguments and keeps the
// cloned interfaces in a file) to show that the second run changes nothing.
// None of the tests needs root, carpd or anything under /etc.
package rctest
