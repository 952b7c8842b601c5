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
  /** The phases it waited for before it started. */
  after: string[]
  /**
   * Where it waited part-way for another phase (the trainer image, built
   * beside the cluster, waits for its registry to push), in ms since the run
   * started.
   */
  waits: { phase: string; from: number; to: number }[]
}

/** Inside a phase, waits for another phase's result and counts the wait as that phase's, not this one's. */
export type WaitFor = <U>(phase: string, result: () => Promise<U>) => Promise<U>

/** A phase's own time, without its waits part-way: what it adds when phases run one after another. */
export function ownMs(phase: PhaseTiming): number {
  return phase.waits.reduce((own, w) => own - (w.to - w.from), phase.ms)
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
    const waits: PhaseTiming['waits'] = []
    const waitFor: WaitFor = async (phase, result) => {
      const from = this.now()
      try {
        return await result()
      } finally {
        waits.push({ phase, from, to: this.now() })
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
      const after = [...(options.after ?? [])]
      this.phases.push({ phase: name, start, end, ms: end - start, ok, after, waits })
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
 * The longest path of waits through the phases (what no concurrency can save).
 * A phase adds its own time to the longest path among the phases it waited
 * for before it started; a phase it waited for part-way leads into it only
 * with the time after that wait. Phases named that did not run (a failed run)
 * are left out.
 */
export function criticalPath(phases: readonly PhaseTiming[]): CriticalPath {
  const byName = new Map(phases.map((p) => [p.phase, p]))
  const longest = new Map<string, CriticalPath>()
  const pathTo = (phase: PhaseTiming, seen: ReadonlySet<string>): CriticalPath => {
    const known = longest.get(phase.phase)
    if (known) return known
    const via = (name: string): CriticalPath | undefined => {
      const dependency = byName.get(name)
      // A phase cannot wait for itself; a cycle would be a bug in run.ts.
      if (!dependency || seen.has(name)) return undefined
      return pathTo(dependency, new Set([...seen, name]))
    }
    let before: CriticalPath = { phases: [], ms: 0 }
    for (const name of phase.after) {
      const candidate = via(name)
      if (candidate && candidate.ms > before.ms) before = candidate
    }
    let result = { phases: [...before.phases, phase.phase], ms: before.ms + ownMs(phase) }
    for (const wait of phase.waits) {
      const candidate = via(wait.phase)
      if (!candidate) continue
      const ms = candidate.ms + (phase.end - wait.to)
      if (ms > result.ms) result = { phases: [...candidate.phases, phase.phase], ms }
    }
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
