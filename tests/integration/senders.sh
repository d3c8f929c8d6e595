#!/bin/sh
# Senders against the scripted mock provider, router in the loop (see senders.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 senders.py "$@"
