#!/bin/sh
# ingress-uwpx over real TLS 1.2 against a scripted fake router (see uwpx.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 uwpx.py "$@"
