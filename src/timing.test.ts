import { setTimeout as delay } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { criticalPath, Timings, timingsDocument, type PhaseTiming } from './timing.js'

function timed(phase: string, start: number, ms: number, after: string[] = [], waitedMs = 0) {
  return { phase, start, end: start + ms, ms, ok: true, after, waitedMs } satisfies PhaseTiming
}

describe('criticalPath', () => {
  it('follows the longest chain of waits, not the longest phase', () => {
    const phases = [
      timed('Signing key', 0, 100),
      timed('Cluster', 0, 50_000),
      timed('Trainer image', 0, 70_000),
      timed('Tekton', 50_000, 30_000, ['Cluster', 'Signing key']),
      timed('Pipeline', 80_000, 40_000, ['Tekton', 'Cluster']),
      timed('Chains', 120_000, 5_000, ['Pipeline']),
    ]
    expect(criticalPath(phases)).toEqual({
      phases: ['Cluster', 'Tekton', 'Pipeline', 'Chains'],
      ms: 125_000,
    })
  })

  it("counts a phase's own time only: a wait part-way belongs to the phase waited for", () => {
    const phases = [
      timed('Cluster', 0, 50_000),
      // Built in 20 s, then waited 30 s for the cluster's registry, pushed in 5 s.
      timed('Trainer image', 0, 55_000, ['Cluster'], 30_000),
      timed('Registry check', 55_000, 2_000, ['Trainer image']),
    ]
    expect(criticalPath(phases)).toEqual({
      phases: ['Cluster', 'Trainer image', 'Registry check'],
      ms: 77_000,
    })
    expect(timingsDocument(new Date(0), phases).sequentialMs).toBe(77_000)
  })

  it('leaves out phases named but never run, and is empty without phases', () => {
    expect(criticalPath([timed('Pipeline', 10, 5, ['Tekton'])])).toEqual({
      phases: ['Pipeline'],
      ms: 5,
    })
    expect(criticalPath([])).toEqual({ phases: [], ms: 0 })
  })
})

describe('Timings', () => {
  it('records when each phase ran, what it waited for, and a failed phase as failed', async () => {
    const timings = new Timings()
    const first = timings.phase('First', () => delay(200), { grouped: false })
    await timings.phase(
      'Second',
      async (waitFor) => {
        await delay(20)
        await waitFor('First', () => first)
      },
      { grouped: false },
    )
    await expect(
      timings.phase('Third', () => Promise.reject(new Error('no')), {
        grouped: false,
        after: ['Second'],
      }),
    ).rejects.toThrow('no')
    const [a, b, c] = timings.phases
    expect(a).toMatchObject({ phase: 'First', ok: true, after: [], waitedMs: 0 })
    expect(b).toMatchObject({ phase: 'Second', ok: true, after: ['First'] })
    // Second waited part-way for First, from about 20 ms to First's end (200 ms).
    expect(b!.waitedMs).toBeGreaterThan(0)
    expect(b!.waitedMs).toBeLessThan(b!.ms)
    expect(b!.end).toBeGreaterThanOrEqual(a!.end)
    expect(c).toMatchObject({ phase: 'Third', ok: false, after: ['Second'] })
    expect(c!.start).toBeGreaterThanOrEqual(b!.end)
    const document = timings.document()
    expect(document.wallMs).toBe(c!.end)
    expect(document.criticalPath.phases).toEqual(['First', 'Second', 'Third'])
    expect(Date.parse(document.startedAt)).toBeLessThanOrEqual(Date.now())
  })
})
