#!/usr/bin/env bash
# The whole test command (`npm test`): installs what is missing, checks style and types, then runs the suite
# against real servers (installed from Debian by the test bed when missing) on Node 20 and on Node 24.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh

echo "== lint, types, format, config reference"
npx eslint .
npx tsc -p tsconfig.json --noEmit
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }
npx tsx scripts/config-reference.ts --check

echo "== test suite on Node $(node --version)"
npx vitest run

node24=$(bash scripts/node24.sh)
echo "== test suite on Node $("$node24" --version)"
"$node24" node_modules/vitest/vitest.mjs run
