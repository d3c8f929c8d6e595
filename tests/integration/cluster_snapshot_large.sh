#!/bin/sh
# A registry snapshot larger than the flow-control window loads on a new router (docs/cluster.md).
cd "$(dirname "$0")" && exec python3 cluster_snapshot_large.py "$@"
