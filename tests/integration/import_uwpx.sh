#!/bin/sh
# pushctl import-uwpx, then a XEP-0357 publish to an imported node (see import_uwpx.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 import_uwpx.py "$@"
