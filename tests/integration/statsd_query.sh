#!/bin/sh
# statsd's query socket: replies that do not fit the socket are sent when it drains (see statsd_query.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 statsd_query.py "$@"
