#!/bin/sh
# UWPX registrations in cluster mode over three local nats-server nodes (docs/cluster.md).
cd "$(dirname "$0")" && exec python3 cluster_uwpx.py "$@"
