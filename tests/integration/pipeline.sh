#!/bin/sh
# End-to-end notify through the whole pipeline (see pipeline.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 pipeline.py "$@"
