// Package pkgtest tests the Debian package that make deb builds, on the
// machine itself: it installs it with dpkg -i, checks that every file is
// where the man pages' FILES sections say and nowhere they do not, that the
// binaries are static and stripped, that they run, that the units pass
// systemd-analyze verify and are not enabled, and that dpkg -r and dpkg
// --purge leave nothing behind (a file list of every place the package or
// an admin's "systemctl enable" writes, compared before and after).
//
// It needs root and dpkg, and refuses to run where bsdcarp is already
// installed or any of its files exists, since it would remove them. It
// starts no carpd: nothing in the package starts one, and the units are
// never enabled by it. The package is purged again when the test fails.
// Without root it skips, except in CI (CI set), where it fails.
package pkgtest
