import { setTimeout as delay } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { criticalPath, ownMs, Timings, timingsDocument, type PhaseTiming } from './timing.js'

function timed(
  phase: string,
  start: number,
  ms: number,
  after: string[] = [],
  waits: PhaseTiming['waits'] = [],
) {
  return { phase, start, end: start + ms, ms, ok: true, after, waits } satisfies PhaseTiming
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

  it('a wait part-way: only the time after it follows the phase waited for', () => {
    const phases = [
      timed('Cluster', 0, 50_000),
      // Built in 20 s beside the cluster, waited 30 s for its registry, pushed in 5 s.
      timed('Trainer image', 0, 55_000, [], [{ phase: 'Cluster', from: 20_000, to: 50_000 }]),
      timed('Registry check', 55_000, 2_000, ['Trainer image']),
    ]
    expect(criticalPath(phases)).toEqual({
      phases: ['Cluster', 'Trainer image', 'Registry check'],
      ms: 57_000,
    })
    // Its own 25 s count once, the wait not at all.
    expect(timingsDocument(new Date(0), phases).sequentialMs).toBe(77_000)
  })

  it('a wait part-way that ended before the phase would have anyway: its own time decides', () => {
    const phases = [
      timed('Cluster', 0, 10_000),
      // Built in 40 s, waited 0 s for a registry that was long there, pushed in 5 s.
      timed('Trainer image', 0, 45_000, [], [{ phase: 'Cluster', from: 40_000, to: 40_000 }]),
    ]
    expect(criticalPath(phases)).toEqual({ phases: ['Trainer image'], ms: 45_000 })
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
    expect(a).toMatchObject({ phase: 'First', ok: true, after: [], waits: [] })
    expect(b).toMatchObject({ phase: 'Second', ok: true, after: [] })
    // Second waited part-way for First, from about 20 ms to First's end (200 ms).
    expect(b!.waits).toEqual([{ phase: 'First', from: expect.any(Number), to: expect.any(Number) }])
    const [wait] = b!.waits
    expect(wait!.from).toBeGreaterThanOrEqual(b!.start)
    expect(wait!.to).toBeGreaterThanOrEqual(a!.end)
    expect(ownMs(b!)).toBeLessThan(b!.ms)
    expect(c).toMatchObject({ phase: 'Third', ok: false, after: ['Second'] })
    expect(c!.start).toBeGreaterThanOrEqual(b!.end)
    const document = timings.document()
    expect(document.wallMs).toBe(c!.end)
    expect(document.criticalPath.phases).toEqual(['First', 'Second', 'Third'])
    expect(Date.parse(document.startedAt)).toBeLessThanOrEqual(Date.now())
  })
})
