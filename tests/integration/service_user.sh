#!/bin/sh
# The pipeline as an unprivileged system user with the documented layout (see service_user.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 service_user.py "$@"
