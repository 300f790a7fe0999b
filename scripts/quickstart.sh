#!/usr/bin/env bash
# Quickstart: installs what is missing, starts Redis, Prosody (demo users), an IRC server and the gateway
# with every adapter on, on free loopback ports, and prints how to log in. Ctrl-C stops everything.
#   --smoke   start, check as a user that the gateway works (disco, register, message, unregister), stop.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
exec npx tsx scripts/quickstart.ts "$@"
