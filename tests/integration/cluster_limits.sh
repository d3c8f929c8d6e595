#!/bin/sh
# Registry snapshots compact PP_REGISTRY; router.outbox_max bounds PP_JOBS and PP_REQ (docs/cluster.md).
cd "$(dirname "$0")" && exec python3 cluster_limits.py "$@"
