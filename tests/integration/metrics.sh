#!/bin/sh
# statsd alone: windows, restarts, /metrics names and format, loopback only (see metrics.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 metrics.py "$@"
