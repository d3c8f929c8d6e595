#!/bin/sh
# Several apps of one platform on one pipeline: each token delivered with its own app's credentials (see apps_multi.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 apps_multi.py "$@"
