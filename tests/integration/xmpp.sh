#!/bin/sh
# ingress-xmpp against a fake XMPP server and a fake router (see xmpp.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 xmpp.py "$@"
