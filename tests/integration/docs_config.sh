#!/bin/sh
# docs/config.md documents every configuration key the code accepts, in its section (docs_config.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 docs_config.py "$@"
