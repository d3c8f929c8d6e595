#!/bin/sh
# hms-sender against the mock Push Kit through the whole pipeline (see hms.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 hms.py "$@"
