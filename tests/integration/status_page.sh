#!/bin/sh
# The status page in a real browser: headless Chromium screenshots statsd's "/" and dumps its
# DOM (see status_page.py). Installs Debian's chromium when it is missing.
if ! command -v chromium >/dev/null 2>&1; then
	echo "status_page: chromium is missing; installing it (apt-get install -y chromium)"
	if [ "$(id -u)" = 0 ]; then
		apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1; }
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n apt-get install -y chromium >/dev/null 2>&1
	fi
	if ! command -v chromium >/dev/null 2>&1; then
		echo "FAIL chromium could not be installed (apt-get install -y chromium needs root and the Debian archive)"
		echo "0 passed, 1 failed"
		exit 1
	fi
fi
cd "$(dirname "$0")" && exec /usr/bin/python3 status_page.py "$@"
