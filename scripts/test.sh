#!/usr/bin/env bash
# The test command (`npm test`): makes sure the real test tools are installed,
# then runs the whole suite on Node 24, the runtime the action ships for.
#
# The suites that run a real Kubernetes node (test/node/, the node harness's
# own test) run after the rest, not beside it: on two cores a node, Tekton and
# the other suites' API servers side by side starve each other into timeouts.
# With arguments (files, -t NAME, ...) it runs just those, in one go.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/test-tools.sh"
export PATH="$root/.tools/bin:$PATH"
cd "$root"

NODE_SUITES=(test/node test/harness/node.test.ts)

results=$(mktemp -d)
# Each secret search the tests run is counted here (test/harness/secret-scan.ts).
export OML_SECRET_SCAN_DIR OML_FAULT_CASES_DIR
OML_SECRET_SCAN_DIR=$(mktemp -d)
# And each fault case, with how the run came out of it (test/harness/faults/record.ts).
OML_FAULT_CASES_DIR=$(mktemp -d)
trap 'rm -rf "$results" "$OML_SECRET_SCAN_DIR" "$OML_FAULT_CASES_DIR"' EXIT
status=0
# vitest NAME ARGS...: one vitest run, its JSON report as $results/NAME.json.
vitest() {
  local name=$1
  shift
  node node_modules/vitest/vitest.mjs run --reporter=default --reporter=json \
    --outputFile.json="$results/$name.json" "$@" || status=$?
}
if [ $# -gt 0 ]; then
  vitest selected "$@"
else
  excluded=()
  for suite in "${NODE_SUITES[@]}"; do
    case $suite in
      *.ts) excluded+=(--exclude "$suite") ;;
      *) excluded+=(--exclude "$suite/**") ;;
    esac
  done
  vitest main "${excluded[@]}"
  vitest node "${NODE_SUITES[@]}"
fi
# One plain closing line with the counts of every run, whatever the reporter printed above.
node -e '
  const fs = require("fs"), path = require("path")
  let passed = 0, failed = 0, skipped = 0
  for (const file of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(path.join(process.argv[1], file), "utf8"))
    passed += r.numPassedTests
    failed += r.numFailedTests
    skipped += r.numPendingTests + r.numTodoTests
  }
  console.log(`tests: ${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""))
  let runs = 0, artefacts = 0, hits = 0
  for (const file of fs.readdirSync(process.argv[2])) {
    for (const line of fs.readFileSync(path.join(process.argv[2], file), "utf8").split("\n")) {
      if (!line) continue
      const search = JSON.parse(line)
      runs++, artefacts += search.artefacts, hits += search.hits
    }
  }
  if (runs) console.log(`secret search: ${artefacts} artefacts of ${runs} runs searched for their secrets in every encoding, hits: ${hits}`)
  const faults = new Map()
  for (const file of fs.readdirSync(process.argv[3])) {
    for (const line of fs.readFileSync(path.join(process.argv[3], file), "utf8").split("\n")) {
      if (line) faults.set(JSON.parse(line).fault, JSON.parse(line).outcome)
    }
  }
  if (faults.size) {
    const count = (outcome) => [...faults.values()].filter((o) => o === outcome).length
    const names = [...faults.keys()].sort().map((f) => `${f} (${faults.get(f)})`)
    console.log(`fault cases: ${faults.size} tried, ${count("survived")} survived, ${count("reported")} reported: ${names.join("; ")}`)
  }
' "$results" "$OML_SECRET_SCAN_DIR" "$OML_FAULT_CASES_DIR" || true
exit "$status"
