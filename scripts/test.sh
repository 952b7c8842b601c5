#!/usr/bin/env bash
# The test command (`npm test`): makes sure the real test tools are installed,
# then runs the whole suite on Node 24, the runtime the action ships for.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/test-tools.sh"
export PATH="$root/.tools/bin:$PATH"
cd "$root"
exec node node_modules/vitest/vitest.mjs run "$@"
