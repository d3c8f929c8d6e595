#!/bin/sh
# The whole pipeline once under valgrind (memcheck): no invalid access, no leak (see valgrind.py).
# A sanitizer build (make SANITIZE=...) cannot run under valgrind; the plain `make check` runs it.
cd "$(dirname "$0")" || exit 1
if ldd ../../bin/router 2>/dev/null | grep -q 'lib[at]san'; then
	echo "skipped: the binaries are built with a sanitizer, which valgrind cannot run (make check without SANITIZE runs this test)"
	echo "0 passed, 0 failed"
	exit 0
fi
PUSHPIPE_VALGRIND=1 exec /usr/bin/python3 valgrind.py "$@"
