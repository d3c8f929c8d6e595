#!/bin/sh
# Cluster mode end to end over three local nats-server nodes (docs/cluster.md).
cd "$(dirname "$0")" && exec python3 cluster_transport.py "$@"
