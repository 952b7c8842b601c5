import * as core from '@actions/core'
import { formatDuration } from './duration.js'

export interface PhaseTiming {
  phase: string
  ms: number
  ok: boolean
}

/** Runs phases and keeps how long each took, for the log and the summary. */
export class Timings {
  readonly phases: PhaseTiming[] = []

  /**
   * Runs one phase, folded into a log group. Phases that run concurrently pass
   * `grouped: false`: the runner's groups cannot overlap.
   */
  async phase<T>(
    name: string,
    work: () => Promise<T>,
    options: { grouped?: boolean } = {},
  ): Promise<T> {
    const started = performance.now()
    let ok = false
    try {
      const result = await (options.grouped === false ? work() : core.group(name, work))
      ok = true
      return result
    } finally {
      const ms = performance.now() - started
      this.phases.push({ phase: name, ms, ok })
      core.info(`${name}: ${ok ? 'done' : 'failed'} in ${formatDuration(ms)}`)
    }
  }
}
