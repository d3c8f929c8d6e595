#!/bin/sh
# Router durability, failover, feedback and back-pressure (see router_durability.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 router_durability.py "$@"
