/**
 * The fault cases the tests put the action through, each with how it came
 * out: `survived` (the run reached its verdict anyway) or `reported` (it
 * failed with an error that says what happened). Counted in
 * $OML_FAULT_CASES_DIR (set by scripts/test.sh), which prints them in one
 * line. A test records its case only once its assertions have held.
 */
import { appendFileSync } from 'node:fs'
import path from 'node:path'

export function recordFault(fault: string, outcome: 'survived' | 'reported'): void {
  const dir = process.env.OML_FAULT_CASES_DIR
  if (!dir) return
  appendFileSync(path.join(dir, `${process.pid}.jsonl`), `${JSON.stringify({ fault, outcome })}\n`)
}
