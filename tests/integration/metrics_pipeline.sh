#!/bin/sh
# The whole pipeline reporting to statsd, and pushctl stats (see metrics_pipeline.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 metrics_pipeline.py "$@"
