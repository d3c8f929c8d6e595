#!/bin/sh
# /get_statistics_data variants (see statistics.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 statistics.py "$@"
