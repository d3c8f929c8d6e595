#!/bin/sh
# UWPX end to end with the real daemons: ingress-uwpx → router → wns-sender → mock WNS (uwpx_pipeline.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 uwpx_pipeline.py "$@"
