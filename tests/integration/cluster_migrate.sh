#!/bin/sh
# pushctl cluster-import / cluster-export between one machine and a local cluster (docs/cluster.md).
cd "$(dirname "$0")" && exec python3 cluster_migrate.py "$@"
