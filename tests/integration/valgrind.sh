#!/bin/sh
# The whole pipeline once under valgrind (memcheck): no invalid access, no leak (see valgrind.py).
cd "$(dirname "$0")" && PUSHPIPE_VALGRIND=1 exec /usr/bin/python3 valgrind.py "$@"
