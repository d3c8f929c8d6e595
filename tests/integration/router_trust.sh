#!/bin/sh
# The router's trust in its local peers: roles by uid, forged results, hello deadline, WNS URIs (see router_trust.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 router_trust.py "$@"
