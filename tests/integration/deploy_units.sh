#!/bin/sh
# systemd units and tmpfiles (deploy/systemd); a runit run file with a broken configuration
# takes its service down (see deploy_units.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 deploy_units.py "$@"
