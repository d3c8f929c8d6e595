#!/bin/sh
# Independent Python client and pushctl against statsd + router + ingress-onion (see onion_interop.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 onion_interop.py "$@"
