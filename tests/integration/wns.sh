#!/bin/sh
# wns-sender, and the XMPP path of apns-sender and fcm-sender, against the mock provider with a
# fake router (see wns.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 wns.py "$@"
