#!/bin/sh
# pushctl import-legacy: a legacy SQLite database into a running router and statsd (see import_legacy.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 import_legacy.py "$@"
