#!/bin/sh
# build-deb.sh BUILD_DIR OUT_DIR: builds OUT_DIR/tern_<version>_<arch>.deb
# from the binary already built in BUILD_DIR (it builds nothing itself), with
# plain dpkg-deb: no debhelper, no debian/ source package. Prints the path of
# the .deb. The staging tree is OUT_DIR/root (recreated each time).
set -eu
umask 022

[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR OUT_DIR" >&2; exit 64; }
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
[ -x "$build/tern" ] || { echo "$0: no $build/tern: build it first" >&2; exit 1; }

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ -n "$version" ] || { echo "$0: no project version in $build/CMakeCache.txt" >&2; exit 1; }
arch=$(dpkg --print-architecture)
maintainer="tern maintainers <maintainers@users.noreply.h-seed-dfd4e809.example>"
root="$out/root"
deb="$out/tern_${version}_${arch}.deb"

rm -rf "$root"
mkdir -p "$root"
DESTDIR="$root" cmake --install "$build" --prefix /usr --strip >/dev/null

# Debian 12 packages ship units in /lib/systemd/system (merged /usr makes
# it the same directory, but dpkg tracks the path as packaged).
mkdir -p "$root/lib/systemd"
mv "$root/usr/lib/systemd/system" "$root/lib/systemd/system"
rmdir "$root/usr/lib/systemd" "$root/usr/lib"

gzip -9n "$root/usr/share/man/man8/tern.8" "$root/usr/share/man/man5/tern.conf.5"

install -D -m 0644 "$src/packaging/tern.conf" "$root/etc/tern/tern.conf"
install -m 0644 "$src/packaging/aliases" "$root/etc/tern/aliases"
install -m 0644 "$src/packaging/debian/copyright" "$root/usr/share/doc/tern/copyright"
date=$(date -R ${SOURCE_DATE_EPOCH:+-d @$SOURCE_DATE_EPOCH})
printf 'tern (%s) unstable; urgency=medium\n\n  * Built from the tern source tree with make deb.\n\n -- %s  %s\n' \
    "$version" "$maintainer" "$date" | gzip -9n > "$root/usr/share/doc/tern/changelog.Debian.gz"
chmod 0644 "$root/usr/share/doc/tern/changelog.Debian.gz"

# Library dependencies as the binary links them (dpkg-shlibdeps wants a
# debian/control to read, so it runs in a scratch directory).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/debian"
printf 'Source: tern\n\nPackage: tern\nArchitecture: any\n' > "$scratch/debian/control"
shlibs=$(cd "$scratch" && dpkg-shlibdeps -O -e"$root/usr/sbin/tern" 2>"$scratch/err") || {
    cat "$scratch/err" >&2; exit 1; }
depends=$(printf '%s\n' "$shlibs" | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "$0: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

mkdir -m 0755 "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: tern
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends, adduser, ssl-cert
Provides: mail-transport-agent
Conflicts: mail-transport-agent
Replaces: mail-transport-agent
Section: mail
Priority: optional
Description: mail transfer agent with a durable queue
 tern receives mail over SMTP (with STARTTLS, implicit TLS and
 authenticated submission), keeps every accepted message safe on disk
 before it answers, delivers to Maildirs of virtual users and relays to
 the world by MX. It runs as separate processes, the network-facing one
 without root privileges, and provides sendmail, mailq and newaliases.
CONTROL
printf '/etc/tern/tern.conf\n/etc/tern/aliases\n' > "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "$src/packaging/debian/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
