#!/bin/sh
# Self-check of the independent Python onion client against bchat-onion-vectors.json
# (tests/interop/test_vectors.py; no server involved).
cd "$(dirname "$0")/../interop" && exec /usr/bin/python3 test_vectors.py "$@"
