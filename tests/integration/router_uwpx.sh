#!/bin/sh
# Router side of UWPX and XMPP against fake ingress and senders (see router_uwpx.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 router_uwpx.py "$@"
