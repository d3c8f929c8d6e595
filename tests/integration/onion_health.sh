#!/bin/sh
# ingress-onion's /healthz names the senders that are not connected (see onion_health.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 onion_health.py "$@"
