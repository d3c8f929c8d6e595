#!/bin/sh
# Several apps of one platform in cluster mode (docs/cluster.md).
cd "$(dirname "$0")" && exec python3 cluster_apps.py "$@"
