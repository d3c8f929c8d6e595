#!/bin/sh
# Apps in the configuration: a sender serves one app, the router checks it (see apps.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 apps.py "$@"
