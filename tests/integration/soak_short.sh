#!/bin/sh
# Short soak (make check, under 90 s): every daemon killed once and every mock fault once
# under load; the long run is `make soak` (see soak.py).
cd "$(dirname "$0")" && exec /usr/bin/python3 soak.py --duration 36 --window 1.5 --gap 1.2 --rate 6 "$@"
