#!/bin/sh
# mkdeb.sh ROOT VERSION ARCH OUT: turns ROOT, a "make install DESTDIR=ROOT
# PREFIX=/usr" tree, into the Debian package OUT with dpkg-deb, offline and
# without fakeroot (every file root-owned by --root-owner-group).  Adds what
# a package has and a source install has not: gzipped man pages, the
# conffiles /etc/default/carpd and /etc/carpd/ifmap, the copyright (with the
# licences of the Go modules linked into the binaries) and the changelog,
# the maintainer scripts of dist/deb and md5sums.
set -eu
[ $# -eq 4 ] || { echo "usage: $0 ROOT VERSION ARCH OUT" >&2; exit 2; }
root=$1 version=$2 arch=$3 out=$4
cd "$(dirname "$0")/.."
umask 022
doc=$root/usr/share/doc/bsdcarp

gzip -9nf "$root"/usr/share/man/man8/*.8
install -D -m 0644 dist/etc/default/carpd "$root/etc/default/carpd"
install -D -m 0644 dist/etc/carpd/ifmap "$root/etc/carpd/ifmap"
install -d "$doc"
gzip -9nc CHANGELOG.md >"$doc/changelog.gz"
{
	cat <<'HEAD'
bsdcarp: FreeBSD's CARP on Linux.

Copyright: the bsdcarp authors.  The source tree states no licence of its
own; ask its maintainers before redistributing.

The binaries are static: they contain the Go standard library and the Go
modules below, each under the licence that follows its name.
HEAD
	echo
	echo "== The Go standard library ($(${GO:-go} env GOVERSION))"
	echo
	cat "$(${GO:-go} env GOROOT)/LICENSE"
	# Every module the commands link, with its licence text.
	${GO:-go} list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' \
		./cmd/... | sort -u |
	while read -r path ver dir; do
		lic=
		for f in LICENSE LICENSE.txt LICENSE.md COPYING; do
			[ -f "$dir/$f" ] && { lic=$dir/$f; break; }
		done
		[ -n "$lic" ] || { echo "mkdeb: no licence file in $dir" >&2; exit 1; }
		echo
		echo "== Go module $path $ver"
		echo
		cat "$lic"
	done
} >"$doc/copyright"

rm -rf "$root/DEBIAN"
install -d -m 0755 "$root/DEBIAN"
install -m 0644 dist/deb/conffiles "$root/DEBIAN/conffiles"
install -m 0755 dist/deb/postinst dist/deb/prerm dist/deb/postrm "$root/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	dist/deb/control.in >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print |
	sed 's|^\./||' | LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out"
