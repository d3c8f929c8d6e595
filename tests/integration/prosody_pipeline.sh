#!/bin/sh
# The whole XMPP side with a real Prosody: UWPX registration → XEP-0357 publish → WNS, and XEP-0050 → FCM.
cd "$(dirname "$0")" && exec /usr/bin/python3 prosody_pipeline.py "$@"
