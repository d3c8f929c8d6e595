#!/bin/sh
# Installs the Debian 12 packages pushpipe needs, only those that are missing.
# Runs as root on a fresh machine; as another user it only reports what is missing.
set -eu
PKGS="build-essential pkg-config libsodium-dev liblmdb-dev lmdb-utils libcurl4-openssl-dev
libnghttp2-dev nghttp2-client libjansson-dev libssl-dev openssl libseccomp-dev
libexpat1-dev runit curl python3 python3-cryptography python3-nacl clang libclang-rt-14-dev"
PKGS="$PKGS libsqlite3-dev" # pushctl import-legacy
PKGS="$PKGS valgrind" # tests/integration/valgrind.sh
PKGS="$PKGS libmicrohttpd-dev" # the HTTP front doors: ingress-onion, statsd
PKGS="$PKGS nats-server libnats-dev" # cluster mode (docs/cluster.md)
PKGS="$PKGS sqlite3" # tests build SQLite databases to import
PKGS="$PKGS dpkg-dev debhelper lintian fakeroot" # make deb
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run 'make deps' as root)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
