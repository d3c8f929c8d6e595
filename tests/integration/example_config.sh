#!/bin/sh
# deploy/pushpipe.json.example: complete, commented, accepted by every daemon's -n (see example_config.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 example_config.py "$@"
