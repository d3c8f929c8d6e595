#!/bin/sh
# Slow clients against ingress-onion: per-source cap, head deadline, minimum body rate (see onion_slowloris.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 onion_slowloris.py "$@"
