#!/bin/sh
# Registry caps, the registration stop before the map is full, and the map gauges (see registry_limits.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 registry_limits.py "$@"
