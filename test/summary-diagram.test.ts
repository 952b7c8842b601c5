/**
 * The job summary's diagram as a reader sees it: each summary snapshot's
 * ```mermaid block drawn by the real Mermaid (from npm) in Debian's headless
 * chromium, with nothing loaded from the network. Mermaid's own parser is the
 * judge of the escaping: hostile names must parse and show as written.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunReport } from '../src/phases/report.js'
import { timingsDocument } from '../src/timing.js'
import { CHAIN_NODES, renderChain, type ChainNode } from '../src/phases/report-chain.js'
import {
  mermaidBlock,
  mermaidBlocks,
  openMermaidPage,
  type DrawnDiagram,
  type MermaidPage,
} from './harness/browser.js'
import { repoRoot } from './harness/tools.js'

const snapshots = path.join(repoRoot, 'src/phases/__snapshots__')

/** The fills the classDefs ask for, as the browser computes them. */
const FILL = {
  ok: 'rgb(218, 251, 225)',
  failed: 'rgb(255, 235, 233)',
  unreached: 'rgb(246, 248, 250)',
} as const
type Outcome = keyof typeof FILL

interface Expected {
  outcome: Outcome
  lines: string[]
}

const PASSED_DATASET = ['Dataset', 'quay.io/mmortari/ml-iris:data', 'digest not known']
const PASSED_RUN = [
  'PipelineRun',
  'oml-chains-run-hdfv6',
  'trainer quay.io/mmortari/demo20240704-mltrain-as-oci',
  'sha256:eb8792686df4…',
]
const QUAY_MODEL = ['Model', 'quay.io/mmortari/ml-iris', 'sha256:bf64e877c246…']
const SIGNED = ['Signature and attestation', 'key SHA256:Y4cmlwgzt8bj7eve…']

/** What each snapshot's diagram must show, node by node in chain order. */
const EXPECTED: Record<string, Record<ChainNode, Expected>> = {
  'summary-pass.md': {
    dataset: { outcome: 'ok', lines: PASSED_DATASET },
    pipelineRun: { outcome: 'ok', lines: PASSED_RUN },
    model: { outcome: 'ok', lines: QUAY_MODEL },
    signature: { outcome: 'ok', lines: SIGNED },
    verdict: { outcome: 'ok', lines: ['Verdict: PASS', 'no violations'] },
  },
  'summary-fail.md': {
    dataset: { outcome: 'ok', lines: PASSED_DATASET },
    pipelineRun: { outcome: 'ok', lines: PASSED_RUN },
    model: { outcome: 'ok', lines: QUAY_MODEL },
    signature: { outcome: 'ok', lines: SIGNED },
    verdict: { outcome: 'failed', lines: ['Verdict: FAIL', '3 violations'] },
  },
  'summary-error.md': {
    dataset: { outcome: 'ok', lines: PASSED_DATASET },
    pipelineRun: { outcome: 'ok', lines: PASSED_RUN },
    model: {
      outcome: 'ok',
      lines: ['Model', 'registry.local:5000/oml-chains/model', 'sha256:aaaaaaaaaaaa…'],
    },
    signature: { outcome: 'ok', lines: SIGNED },
    verdict: { outcome: 'failed', lines: ['Verdict: ERROR', 'ec gave no report'] },
  },
  'summary-error-pipeline.md': {
    dataset: {
      outcome: 'ok',
      lines: ['Dataset', 'quay.io/mmortari/ml-iris:data', 'sha256:b2239d0afbae…'],
    },
    pipelineRun: {
      outcome: 'failed',
      lines: [
        'PipelineRun',
        'trainer quay.io/mmortari/demo20240704-mltrain-as-oci',
        'sha256:eb8792686df4…',
        'Pipeline failed',
      ],
    },
    model: { outcome: 'unreached', lines: ['Model', 'not reached'] },
    signature: { outcome: 'unreached', lines: [...SIGNED, 'not reached'] },
    verdict: {
      outcome: 'unreached',
      lines: ['Verdict: ERROR', 'Enterprise Contract not reached'],
    },
  },
}

/** An address that cannot resolve; the last test asks the page for it. */
const OFFSITE_PROBE = 'http://offsite.invalid/probe'

let mermaid: MermaidPage

beforeAll(async () => {
  mermaid = await openMermaidPage()
})

afterAll(async () => {
  // Mermaid asked for nothing but what the loopback server has.
  expect(mermaid?.browser.offsite.filter((url) => url !== OFFSITE_PROBE)).toEqual([])
  await mermaid?.close()
})

/** The drawn nodes by chain node, checked to be exactly the five, in order, with four arrows. */
function chainOf(diagram: DrawnDiagram) {
  expect(diagram.nodes.map((n) => /-flowchart-([a-z]+)-\d+$/.exec(n.id)?.[1])).toEqual([
    'dataset',
    'pipelinerun',
    'model',
    'signature',
    'verdict',
  ])
  expect(diagram.edges).toBe(4)
  return Object.fromEntries(CHAIN_NODES.map((node, i) => [node, diagram.nodes[i]!])) as Record<
    ChainNode,
    DrawnDiagram['nodes'][number]
  >
}

describe('summary snapshots, drawn by Mermaid in chromium', () => {
  const files = readdirSync(snapshots).filter((f) => /^summary-.*\.md$/.test(f))

  it('every summary snapshot has its expected drawing here', () => {
    expect(files.sort()).toEqual(Object.keys(EXPECTED).sort())
  })

  for (const [file, expected] of Object.entries(EXPECTED)) {
    it(`${file}: five nodes with their texts, outcome classes and colours`, async () => {
      const definition = mermaidBlock(readFileSync(path.join(snapshots, file), 'utf8'))
      if (definition === undefined) throw new Error(`${file} has no mermaid block`)
      const drawn = chainOf(await mermaid.render(definition))
      for (const node of CHAIN_NODES) {
        const { outcome, lines } = expected[node]
        const outcomeClasses = drawn[node].classes.filter((c) => c in FILL)
        expect({ node, lines: drawn[node].lines, outcomeClasses, fill: drawn[node].fill }).toEqual({
          node,
          lines,
          outcomeClasses: [outcome],
          fill: FILL[outcome],
        })
      }
    })
  }
})

/** The bars each snapshot's Timings chart must draw, in order; `crit`: on the critical path. */
const PREPARE_BARS = [
  ['Signing key', 'done'],
  ['Dataset', 'done'],
  ['Cluster', 'crit'],
  ['Registry credentials', 'done'],
  ['Tekton Chains', 'done'],
  ['Tekton Pipelines', 'crit'],
] as const
const EXPECTED_BARS: Record<string, readonly (readonly [string, 'crit' | 'done'])[]> = {
  'summary-pass.md': [
    ...PREPARE_BARS,
    ['ec install', 'done'],
    ['Pipeline', 'crit'],
    ['Chains', 'crit'],
    ['Enterprise Contract', 'crit'],
  ],
  'summary-error-pipeline.md': [...PREPARE_BARS, ['Pipeline (failed)', 'crit']],
}

describe('the Timings chart, drawn by Mermaid in chromium', () => {
  for (const [file, expected] of Object.entries(EXPECTED_BARS)) {
    it(`${file}: a bar per phase with its name, the critical path marked, each after what it waited for`, async () => {
      const blocks = mermaidBlocks(readFileSync(path.join(snapshots, file), 'utf8'))
      const gantt = blocks.find((b) => b.startsWith('gantt'))
      if (gantt === undefined) throw new Error(`${file} has no gantt block`)
      const { bars } = await mermaid.render(gantt)
      expect(
        bars.map((b) => [b.label, b.classes.some((c) => c.startsWith('crit')) ? 'crit' : 'done']),
      ).toEqual(expected)
      for (const bar of bars) expect(bar.width, bar.label).toBeGreaterThan(0)
      // Drawn on one time axis: the training starts where Tekton Pipelines ends.
      const at = (label: string) => bars.find((b) => b.label.startsWith(label))!
      const pipelines = at('Tekton Pipelines')
      expect(at('Pipeline').x).toBeCloseTo(pipelines.x + pipelines.width, 0)
      expect(at('Cluster').x).toBeCloseTo(at('Signing key').x, 0)
    })
  }
})

describe('hostile names', () => {
  const digest = `sha256:${'c'.repeat(64)}`
  // Each aims at one way out of a label: the quote that ends it, Mermaid
  // statements, directives and entity codes, HTML, Markdown, the style/classDef
  // rewrite, a line break, a bidi override, a name too long to show whole.
  const report: RunReport = {
    verdict: 'error',
    error: 'the Chains phase failed',
    dataset: { url: 'evil.io/a"] --> b["x\n#quot;<b>\u202e😀', digest },
    pipelineRun: '<img src=x onerror=alert(1)> & %%{init: {"theme":"forest"}}%%',
    trainerImage: `\`md\` **b** _e_ $x$ ~~d~~ [l](u) |p| {c};@${digest}`,
    model: { registry: 'reg.io', repository: 'style x:#f00; classDef y', digest },
    publicKeyPem: 'not a key',
    timings: timingsDocument(new Date(0), [
      { phase: 'Dataset', start: 0, end: 1, ms: 1, ok: true, after: [], waits: [] },
      { phase: 'Chains', start: 1, end: 2, ms: 1, ok: false, after: [], waits: [] },
    ]),
    failOnViolation: true,
  }
  let drawn: DrawnDiagram

  beforeAll(async () => {
    drawn = await mermaid.render(definitionOf(renderChain(report)))
  })

  it('parse and show every character as written, clipped, on the lines they were given', () => {
    const chain = chainOf(drawn)
    expect(CHAIN_NODES.map((node) => chain[node].lines)).toEqual([
      ['Dataset', 'evil.io/a"] --> b["x #quot;<b>😀', 'sha256:cccccccccccc…'],
      [
        'PipelineRun',
        '<img src=x onerror=alert(1)> & %%{init: {"theme…',
        'trainer `md` **b** _e_ $x$ ~~d~~ [l](u) |p| {c};',
        'sha256:cccccccccccc…',
      ],
      ['Model', 'reg.io/style x:#f00; classDef y', 'sha256:cccccccccccc…'],
      ['Signature and attestation', 'Chains failed'],
      ['Verdict: ERROR', 'Enterprise Contract not reached'],
    ])
  })

  it('keep the outcome colours and the theme: no directive of theirs took effect', async () => {
    const chain = chainOf(drawn)
    expect(CHAIN_NODES.map((node) => chain[node].fill)).toEqual([
      FILL.ok,
      FILL.ok,
      FILL.ok,
      FILL.failed,
      FILL.unreached,
    ])
    const pass = readFileSync(path.join(snapshots, 'summary-pass.md'), 'utf8')
    expect(drawn.style).toBe((await mermaid.render(definitionOf(pass))).style)
  })

  it('leave no element or event handler of theirs in the SVG', () => {
    expect(drawn.elements).not.toContain('img')
    expect(drawn.elements).not.toContain('b')
    expect(drawn.handlers).toEqual([])
    // Their markup is text: escaped in the serialized SVG.
    expect(drawn.svg).toContain('&lt;img src=x onerror=alert(1)&gt;')
  })
})

describe('the page', () => {
  it('reaches nothing but the loopback server: other requests are refused and recorded', async () => {
    const outcome = await mermaid.browser.page.evaluate(async (url) => {
      const { fetch } = globalThis as unknown as { fetch(url: string): Promise<unknown> }
      return fetch(url).then(
        () => 'answered',
        () => 'refused',
      )
    }, OFFSITE_PROBE)
    expect(outcome).toBe('refused')
    expect(mermaid.browser.offsite).toContain(OFFSITE_PROBE)
  })
})

function definitionOf(block: string): string {
  const definition = mermaidBlock(block)
  if (definition === undefined) throw new Error('renderChain gave no mermaid block')
  return definition
}
