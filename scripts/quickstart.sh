#!/usr/bin/env bash
# Quickstart: installs what is missing, starts Redis, Prosody (demo users), an IRC server and the compiled
# gateway (`node dist/src/main.js`, built first) with every adapter on, on free loopback ports, and prints how
# to log in. Ctrl-C stops everything. Runs on Node 22 (fetched into .tools/ when the machine's is older).
#   --smoke   start, check as a user that the gateway works (disco, register, message, unregister), stop.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
node22=$(bash scripts/node.sh 22)
export PATH="$(dirname "$node22"):$PATH"
bash scripts/ensure-deps.sh
exec npx tsx scripts/quickstart.ts "$@"
