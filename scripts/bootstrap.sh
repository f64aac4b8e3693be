#!/usr/bin/env bash
# What `npm start`, `npm test` and `npm run bench` run first: npm dependencies when missing, then a
# WebGPU adapter (scripts/setup.sh). Fast when everything is already there.
set -eu
cd "$(dirname "$0")/.."
if [ ! -d node_modules/webgpu ] || [ ! -d node_modules/vitest ] || [ ! -d node_modules/tsx ] || \
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
KINDLING_SETUP_QUIET=1 bash scripts/setup.sh
