#!/bin/sh
# mkdeb.sh OUTDIR: builds the Debian package (debian/) with dpkg-buildpackage from a copy of
# the tree in a temporary directory, since dpkg-buildpackage writes its results into the
# parent of the source directory; copies the .deb, .buildinfo and .changes to OUTDIR.
# Refuses a sanitizer build (SANITIZE in the environment or in MAKEFLAGS).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-build/deb}
sanitize=${SANITIZE:-}
case " ${MAKEFLAGS:-} " in *" SANITIZE="[!\ ]*) sanitize=yes ;; esac
if [ -n "$sanitize" ]; then
	echo "mkdeb: not with SANITIZE: a package is built from a plain build" >&2
	exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pushpipe-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
src=$tmp/pushpipe
mkdir -p "$src"
# The sources only: no build products, no local run state, no git metadata.
tar -C "$top" --exclude=./build --exclude=./bin --exclude=./var --exclude=./.git -cf - . | tar -C "$src" -xf -
# The outer make's flags (-j, SANITIZE, check's variables) must not reach the package build.
(cd "$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SANITIZE DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=2" \
	dpkg-buildpackage -b -us -uc --no-sign >"$tmp/build.log" 2>&1) || {
	tail -n 40 "$tmp/build.log" >&2
	echo "mkdeb: dpkg-buildpackage failed (last lines above)" >&2
	exit 1
}
case $out in /*) ;; *) out=$top/$out ;; esac
mkdir -p "$out"
cp "$tmp"/*.deb "$tmp"/*.buildinfo "$tmp"/*.changes "$out"/
cp "$tmp/build.log" "$out"/build.log
ls "$out"/*.deb
