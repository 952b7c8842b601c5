import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../../test/harness/tools.js'
import { timingsDocument, type PhaseTiming } from '../timing.js'
import type { RunReport } from './report.js'
import { chainOutcomes, mermaidLabel, renderChain, type NodeOutcome } from './report-chain.js'

// The drawing itself is judged by Mermaid in chromium: test/summary-diagram.test.ts.

const publicKeyPem = readFileSync(
  path.join(repoRoot, 'test/fixtures/chains-real/cosign.pub'),
  'utf8',
)
const digest = `sha256:${'d'.repeat(64)}`
const dataset = { url: 'quay.io/org/data:v1', digest }
const model = { registry: 'quay.io', repository: 'org/model', digest }

const timed = (phase: string, ok: boolean): PhaseTiming => ({
  phase,
  start: 0,
  end: 1,
  ms: 1,
  ok,
  after: [],
  waits: [],
})
const done = (phase: string) => timed(phase, true)
const failed = (phase: string) => timed(phase, false)

/** An error run, as run.ts leaves the report when `timings` end with the failed phase. */
function errorRun(phases: PhaseTiming[], known: Partial<RunReport> = {}): RunReport {
  const timings = timingsDocument(new Date(0), phases)
  return { verdict: 'error', error: 'boom', timings, failOnViolation: true, ...known }
}

/** Outcomes in chain order: dataset, PipelineRun, model, signature, verdict. */
function outcomesOf(report: RunReport): NodeOutcome[] {
  const o = chainOutcomes(report)
  return [o.dataset, o.pipelineRun, o.model, o.signature, o.verdict]
}

describe('chainOutcomes', () => {
  const setUp = [done('Signing key'), done('Dataset'), done('Cluster'), done('Tekton Pipelines')]

  it('pass: every node ok, even with the dataset digest unknown (the run went past it)', () => {
    const report: RunReport = {
      verdict: 'pass',
      dataset: { url: dataset.url },
      model,
      provenancePath: '/tmp/p.json',
      failOnViolation: true,
    }
    expect(outcomesOf(report)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok'])
  })

  it('fail: the verdict failed, the chain before it ok', () => {
    const report: RunReport = {
      verdict: 'fail',
      dataset,
      model,
      provenancePath: '/tmp/p.json',
      failOnViolation: true,
    }
    expect(outcomesOf(report)).toEqual(['ok', 'ok', 'ok', 'ok', 'failed'])
  })

  it.each([
    // Side by side at the start: the dataset lookup ended well, the report has no digest yet.
    [
      'Signing key',
      [failed('Signing key'), done('Dataset'), done('Cluster')],
      {},
      ['ok', 'unreached', 'unreached', 'failed', 'unreached'],
    ],
    [
      'Cluster',
      [done('Signing key'), done('Dataset'), failed('Cluster')],
      {},
      ['ok', 'failed', 'unreached', 'unreached', 'unreached'],
    ],
    [
      'Dataset',
      [done('Signing key'), failed('Dataset'), done('Cluster')],
      {},
      ['failed', 'unreached', 'unreached', 'unreached', 'unreached'],
    ],
    [
      'Tekton Pipelines',
      [...setUp.slice(0, 3), failed('Tekton Pipelines')],
      { dataset },
      ['ok', 'failed', 'unreached', 'unreached', 'unreached'],
    ],
    [
      'Trainer image',
      [...setUp, failed('Trainer image')],
      { dataset },
      ['ok', 'failed', 'unreached', 'unreached', 'unreached'],
    ],
    [
      'Registry credentials',
      [...setUp, failed('Registry credentials')],
      { dataset },
      ['ok', 'failed', 'unreached', 'unreached', 'unreached'],
    ],
    [
      'Pipeline',
      [...setUp, failed('Pipeline')],
      { dataset },
      ['ok', 'failed', 'unreached', 'unreached', 'unreached'],
    ],
    [
      'Chains',
      [...setUp, done('Pipeline'), failed('Chains')],
      { dataset, model },
      ['ok', 'ok', 'ok', 'failed', 'unreached'],
    ],
    [
      'Enterprise Contract',
      [...setUp, done('Pipeline'), done('Chains'), failed('Enterprise Contract')],
      { dataset, model, provenancePath: '/tmp/p.json' },
      ['ok', 'ok', 'ok', 'ok', 'failed'],
    ],
  ] as const)(
    'a failed %s phase marks the node it works towards failed, every other node not made not reached',
    (_phase, timings, known, expected) => {
      expect(outcomesOf(errorRun([...timings], known))).toEqual(expected)
    },
  )

  it('an error no phase timing names: the first node the run did not make failed', () => {
    // e.g. preparing the run namespace (not timed) failed after Tekton.
    expect(outcomesOf(errorRun(setUp, { dataset }))).toEqual([
      'ok',
      'failed',
      'unreached',
      'unreached',
      'unreached',
    ])
    expect(outcomesOf(errorRun([...setUp, failed('A phase added later')], { dataset }))).toEqual([
      'ok',
      'failed',
      'unreached',
      'unreached',
      'unreached',
    ])
  })

  it('an error after the Enterprise Contract phase ended well: the verdict failed', () => {
    const report = errorRun([...setUp, done('Enterprise Contract')], {
      dataset,
      model,
      provenancePath: '/tmp/p.json',
    })
    expect(outcomesOf(report)).toEqual(['ok', 'ok', 'ok', 'ok', 'failed'])
  })
})

describe('renderChain', () => {
  it('nothing for a run that stopped before any phase (a bad input)', () => {
    expect(renderChain(errorRun([]))).toBe('')
  })

  it('names the failed phase in its node and says which were not reached', () => {
    const chain = renderChain(
      errorRun([done('Signing key'), done('Dataset'), failed('Cluster')], { publicKeyPem }),
    )
    expect(chain.split('\n')).toEqual([
      '```mermaid',
      'flowchart LR',
      "  accTitle: How this run's model was made and checked",
      '  dataset[("Dataset")]',
      '  pipelinerun["PipelineRun<br>Cluster failed"]',
      '  model["Model<br>not reached"]',
      '  signature["Signature and attestation<br>key SHA256:Y4cmlwgzt8bj7eve…<br>not reached"]',
      '  verdict(["Verdict: ERROR<br>Enterprise Contract not reached"])',
      '  dataset --> pipelinerun --> model --> signature --> verdict',
      '  classDef ok fill:#dafbe1,stroke:#1a7f37,stroke-width:2px,color:#1f2328',
      '  classDef failed fill:#ffebe9,stroke:#cf222e,stroke-width:3px,color:#1f2328',
      '  classDef unreached fill:#f6f8fa,stroke:#818b98,stroke-width:1px,stroke-dasharray:5 4,color:#59636e',
      '  class dataset ok',
      '  class pipelinerun failed',
      '  class model,signature,verdict unreached',
      '```',
    ])
  })

  it('stays a few KB whatever the names', () => {
    const huge = '&"<'.repeat(100_000)
    const chain = renderChain(
      errorRun([failed('Chains')], {
        dataset: { url: huge, digest: huge },
        pipelineRun: huge,
        trainerImage: `${huge}@${huge}`,
        model: { registry: huge, repository: huge, digest: huge },
      }),
    )
    expect(Buffer.byteLength(chain)).toBeLessThan(8_000)
  })
})

describe('mermaidLabel', () => {
  it('writes every character outside letters, digits and a few marks as an entity code', () => {
    expect(mermaidLabel(['a"b<c>#d;`e` %%{x}%% *f* _g_'])).toBe(
      'a#34;b#60;c#62;#35;d#59;#96;e#96; #37;#37;#123;x#125;#37;#37; #42;f#42; #95;g#95;',
    )
  })

  it('joins lines with <br>; a line break inside a line becomes a space', () => {
    expect(mermaidLabel(['one\r\n  two', 'three'])).toBe('one two<br>three')
  })

  it('keeps a colon unless the label names style or classDef', () => {
    expect(mermaidLabel(['reg.io:5000/a', 'sha256:ab'])).toBe('reg.io:5000/a<br>sha256:ab')
    expect(mermaidLabel(['Style x', 'a:b'])).toBe('Style x<br>a#58;b')
    expect(mermaidLabel(['classDef:x'])).toBe('classDef#58;x')
  })

  it('drops controls, bidi overrides and zero-width characters; encodes the rest by code point', () => {
    expect(mermaidLabel(['a\u0007b\u202ec\u200bd\u{1f600}é'])).toBe('abcd#128512;#233;')
  })
})
