#!/bin/sh
# Per-role sandbox: pipeline under the sandbox, and forbidden actions per daemon (see sandbox.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 sandbox.py "$@"
