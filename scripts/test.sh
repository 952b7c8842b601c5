#!/usr/bin/env bash
# The test command (`npm test`): makes sure the real test tools are installed,
# then runs the whole suite on Node 24, the runtime the action ships for.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/test-tools.sh"
export PATH="$root/.tools/bin:$PATH"
cd "$root"

results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
node node_modules/vitest/vitest.mjs run --reporter=default --reporter=json \
  --outputFile.json="$results" "$@" || status=$?
# One plain closing line with the counts, whatever the reporter printed above.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
  const skipped = r.numPendingTests + r.numTodoTests
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""))
' "$results" || true
exit "$status"
