#!/bin/sh
# Operator-facing behaviour: --help/--version, -n, instance locks, SIGHUP, log lines (see operations.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 operations.py "$@"
