#!/bin/sh
# The bad-input table of docs/protocol.md against a running ingress-onion (see onion_bad_input.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 onion_bad_input.py "$@"
