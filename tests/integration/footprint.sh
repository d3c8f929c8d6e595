#!/bin/sh
# What each idle daemon maps in the single-machine configuration (see footprint.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 footprint.py "$@"
