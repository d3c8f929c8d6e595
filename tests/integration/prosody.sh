#!/bin/sh
# ingress-xmpp against a real Prosody with mod_cloud_notify on loopback (see prosody.py);
# installs the Debian packages prosody and prosody-modules when missing.
cd "$(dirname "$0")" && exec /usr/bin/python3 prosody.py "$@"
