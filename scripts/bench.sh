#!/usr/bin/env bash
# The benchmark (`npm run bench`): makes sure the real test tools are installed,
# then times the committed bundle on the cluster from real parts
# (bench/action.bench.ts). Takes root, like the node tests, and 15 minutes or so.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/test-tools.sh"
export PATH="$root/.tools/bin:$PATH"
cd "$root"
exec node node_modules/vitest/vitest.mjs run --config bench/vitest.config.ts "$@"
