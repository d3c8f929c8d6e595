#!/bin/sh
# The senders' own HTTP/2 connections against the mock (see h2direct.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 h2direct.py "$@"
