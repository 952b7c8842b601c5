// Loaded into the action's process by the benchmark (NODE_OPTIONS=--import):
// writes the process's peak resident memory, in KiB, when it exits.
import { writeFileSync } from 'node:fs'

process.on('exit', () => {
  writeFileSync(process.env.BENCH_MAX_RSS_FILE, String(process.resourceUsage().maxRSS))
})
