#!/bin/sh
# XEP-0050 registrations naming an app, end to end (docs/config.md, section apps).
cd "$(dirname "$0")" && exec python3 xmpp_apps.py "$@"
