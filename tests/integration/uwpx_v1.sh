#!/bin/sh
# UWPX protocol version 1 through the pipeline (see uwpx_v1.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 uwpx_v1.py "$@"
