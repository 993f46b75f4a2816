#!/usr/bin/env bash
# Installs what the console test (tests/console_test.go) needs, when it is missing: Debian's
# chromium and chromium-driver, and playwright-core (tests/ui/package-lock.json). Run by
# `make ui-deps`, which `make test` runs first; it does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "installing Debian's chromium and chromium-driver (the console test drives it)"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi

command -v npm >/dev/null || { echo "npm is missing: install Node.js (the console test runs playwright-core)" >&2; exit 1; }
# npm ci again only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.fsmd-lock; then
	npm ci --no-audit --no-fund --loglevel=error
	cp package-lock.json node_modules/.fsmd-lock
fi
