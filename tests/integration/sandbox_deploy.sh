#!/bin/sh
# Deployment files: runit tree and supervisord config are valid; the runit tree runs the pipeline.
cd "$(dirname "$0")" && exec /usr/bin/python3 sandbox_deploy.py "$@"
