import * as core from '@actions/core'
import { formatDuration } from './duration.js'

/** One phase of a run, as the timings file and the summary show it. */
export interface PhaseTiming {
  phase: string
  /** When it started, in ms since the run started. */
  start: number
  /** When it ended, in ms since the run started. */
  end: number
  /** end - start. */
  ms: number
  ok: boolean
  /** The phases it waited for: before it started, or part-way (see waitedMs). */
  after: string[]
  /** Of ms, the time spent part-way waiting for another phase (the trainer's push, for the registry). */
  waitedMs: number
}

/** Inside a phase, waits for another phase's result and counts the wait as that phase's, not this one's. */
export type WaitFor = <U>(phase: string, result: () => Promise<U>) => Promise<U>

/** A phase's own time: what it adds when phases run one after another. */
export function ownMs(phase: PhaseTiming): number {
  return phase.ms - phase.waitedMs
}

/** The run's phases on one path of waits: the longest such path decides the run's time. */
export interface CriticalPath {
  /** Phase names, first to last. */
  phases: string[]
  /** The sum of their own times (ownMs). */
  ms: number
}

/** The timings file (the `timings` output): what the summary's chart is drawn from. */
export interface TimingsDocument {
  /** When the run started (ISO 8601). */
  startedAt: string
  /** From the run's start to the end of its last phase. */
  wallMs: number
  phases: PhaseTiming[]
  criticalPath: CriticalPath
  /** The phases' own times added up: the run with every phase one after another. */
  sequentialMs: number
}

/** Runs phases and keeps when each ran and what it waited for. */
export class Timings {
  readonly phases: PhaseTiming[] = []
  readonly startedAt = new Date()
  private readonly origin = performance.now()

  /**
   * Runs one phase, folded into a log group. Phases that run concurrently pass
   * `grouped: false`: the runner's groups cannot overlap. `after` names the
   * phases this one waited for before it started; `work` is given a WaitFor
   * for those it waits for part-way.
   */
  async phase<T>(
    name: string,
    work: (waitFor: WaitFor) => Promise<T>,
    options: { grouped?: boolean; after?: readonly string[] } = {},
  ): Promise<T> {
    const start = this.now()
    const after = [...(options.after ?? [])]
    let waitedMs = 0
    const waitFor: WaitFor = async (phase, result) => {
      if (!after.includes(phase)) after.push(phase)
      const from = this.now()
      try {
        return await result()
      } finally {
        waitedMs += this.now() - from
      }
    }
    let ok = false
    try {
      const run = () => work(waitFor)
      const result = await (options.grouped === false ? run() : core.group(name, run))
      ok = true
      return result
    } finally {
      const end = this.now()
      this.phases.push({ phase: name, start, end, ms: end - start, ok, after, waitedMs })
      core.info(`${name}: ${ok ? 'done' : 'failed'} in ${formatDuration(end - start)}`)
    }
  }

  /** ms since the run started. */
  now(): number {
    return Math.round(performance.now() - this.origin)
  }

  document(): TimingsDocument {
    return timingsDocument(this.startedAt, this.phases)
  }
}

export function timingsDocument(startedAt: Date, phases: readonly PhaseTiming[]): TimingsDocument {
  return {
    startedAt: startedAt.toISOString(),
    wallMs: Math.max(0, ...phases.map((p) => p.end)),
    phases: [...phases],
    criticalPath: criticalPath(phases),
    sequentialMs: phases.reduce((sum, p) => sum + ownMs(p), 0),
  }
}

/**
 * The longest path of waits through the phases: each phase's own time plus the
 * longest path among the phases it waited for (what no concurrency can save). Phases it names that did not
 * run (a failed run) are left out.
 */
export function criticalPath(phases: readonly PhaseTiming[]): CriticalPath {
  const byName = new Map(phases.map((p) => [p.phase, p]))
  const longest = new Map<string, CriticalPath>()
  const pathTo = (phase: PhaseTiming, seen: ReadonlySet<string>): CriticalPath => {
    const known = longest.get(phase.phase)
    if (known) return known
    let before: CriticalPath = { phases: [], ms: 0 }
    for (const name of phase.after) {
      const dependency = byName.get(name)
      // A phase cannot wait for itself; a cycle would be a bug in run.ts.
      if (!dependency || seen.has(name)) continue
      const candidate = pathTo(dependency, new Set([...seen, name]))
      if (candidate.ms > before.ms) before = candidate
    }
    const result = { phases: [...before.phases, phase.phase], ms: before.ms + ownMs(phase) }
    longest.set(phase.phase, result)
    return result
  }
  let best: CriticalPath = { phases: [], ms: 0 }
  for (const phase of phases) {
    const candidate = pathTo(phase, new Set([phase.phase]))
    // On a tie the later phase: the path runs to the run's end.
    if (candidate.ms >= best.ms) best = candidate
  }
  return best
}
