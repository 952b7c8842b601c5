import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../test/harness/tools.js'
import { envelopePayload, parseDsseEnvelope } from '../cosign/dsse.js'
import { parseReference } from '../oci/reference.js'
import { summarizeProvenance } from '../provenance/summary.js'
import { timingsDocument, type PhaseTiming } from '../timing.js'
import { parseEcReport, summarizeEcReport, type EcFinding } from '../tools/ec/report.js'
import { validateImage, type EcValidation } from '../tools/ec/validate.js'
import {
  cellText,
  code,
  MAX_VIOLATION_ANNOTATIONS,
  renderSummary,
  reportOutputs,
  SUMMARY_MAX_BYTES,
  violationAnnotations,
  type RunReport,
} from './report.js'

const fixtures = path.join(repoRoot, 'test/fixtures')
const publicKeyPem = readFileSync(path.join(fixtures, 'chains-real/cosign.pub'), 'utf8')
// Fixed, runner-like paths: the snapshots must not depend on where tests run.
const workDir = '/home/runner/work/_temp/oml-chains'
const reportPath = `${workDir}/ec-report.json`

/** ec's outcome for a real report ec printed (test/fixtures/ec), as validateImage returns it. */
function ecValidation(file: string): EcValidation {
  const report = parseEcReport(readFileSync(path.join(fixtures, 'ec', file)), file)
  return {
    verdict: report.success ? 'pass' : 'fail',
    report,
    summary: summarizeEcReport(report),
    reportPath,
    policyPath: `${workDir}/config.rule-data.json`,
    exitCode: 0,
    stderr: '',
    attempts: 1,
  }
}

interface TaskRunStatement {
  predicate: { invocation: { environment: { labels: Record<string, string> } } }
}

/** What the run knows from the real Chains attestation (test/fixtures/chains-real). */
function knownFromProvenance(): Omit<RunReport, 'verdict' | 'failOnViolation'> {
  const envelope = parseDsseEnvelope(
    readFileSync(path.join(fixtures, 'chains-real/taskrun-attestation.dsse.json')),
  )
  const statement: unknown = JSON.parse(envelopePayload(envelope).toString('utf8'))
  const provenance = summarizeProvenance(statement)
  const subject = provenance.subjects[0]
  if (!subject?.digest || !provenance.dataset?.url) throw new Error('fixture changed')
  const { registry, repository } = parseReference(subject.name)
  return {
    model: { registry, repository, digest: subject.digest },
    dataset: { url: provenance.dataset.url, digest: provenance.dataset.digest },
    trainerImage: provenance.trainerImage,
    accuracy: provenance.accuracy,
    pipelineRun: (statement as TaskRunStatement).predicate.invocation.environment.labels[
      'tekton.dev/pipelineRun'
    ],
    publicKeyPem,
    provenancePath: `${workDir}/provenance.json`,
    policy: { ruleData: { allowed_dataset_prefixes: ['quay.io/mmortari/'], min_accuracy: 0.9 } },
  }
}

/** A run as run.ts times it: which phase waited for which, and when each ran. */
const PREPARED = ['Signing key', 'Dataset', 'Cluster', 'Registry credentials', 'Tekton Pipelines']
function timed(phase: string, start: number, ms: number, after: string[], ok = true): PhaseTiming {
  return { phase, start, end: start + ms, ms, ok, after, waits: [] }
}
const TEKTON = ['Cluster', 'Signing key']
// A new Chains: the training starts without waiting for it.
const phases: PhaseTiming[] = [
  timed('Signing key', 0, 412, []),
  timed('Dataset', 0, 1_830, []),
  timed('Cluster', 0, 52_400, []),
  timed('Registry credentials', 52_400, 240, ['Cluster']),
  timed('Tekton Chains', 52_400, 38_700, TEKTON),
  timed('Tekton Pipelines', 52_400, 96_100, TEKTON),
  timed('ec install', 148_500, 1_600, PREPARED),
  timed('Pipeline', 148_500, 143_700, PREPARED),
  timed('Chains', 292_200, 9_050, ['Pipeline', 'Tekton Chains']),
  timed('Enterprise Contract', 301_250, 6_320, ['Chains']),
]
const STARTED = new Date('2026-11-30T09:12:00.000Z')
const timings = timingsDocument(STARTED, phases)

function passReport(): RunReport {
  return {
    ...knownFromProvenance(),
    verdict: 'pass',
    ec: ecValidation('happy-day.json'),
    timings,
    failOnViolation: true,
  }
}

function failReport(): RunReport {
  return {
    ...knownFromProvenance(),
    verdict: 'fail',
    ec: ecValidation('detailed-failures.json'),
    timings,
    failOnViolation: true,
  }
}

/** ec's error outcome through the real code path: ec exited 1 with the stderr it printed, no report. */
let ecError: EcValidation
let scratch: string

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'oml-report-'))
  const stderr = readFileSync(path.join(fixtures, 'ec/invalid-extra-rule-data.stderr.txt'), 'utf8')
  const validation = await validateImage({
    ec: 'ec',
    image: `registry.local:5000/oml-chains/model@sha256:${'a'.repeat(64)}`,
    publicKey: path.join(fixtures, 'chains-real/cosign.pub'),
    policy: path.join(repoRoot, 'policy/config.yaml'),
    reportPath: path.join(scratch, 'ec-report.json'),
    run: () => Promise.resolve({ exitCode: 1, stdout: '', stderr }),
  })
  ecError = { ...validation, reportPath, policyPath: `${workDir}/config.yaml` }
})

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

function errorReport(): RunReport {
  // The model in the embedded registry: the re-check commands need the plain-HTTP flags.
  return {
    ...knownFromProvenance(),
    model: {
      registry: 'registry.local:5000',
      repository: 'oml-chains/model',
      digest: `sha256:${'a'.repeat(64)}`,
    },
    verdict: 'error',
    ec: ecError,
    timings: timingsDocument(STARTED, [
      ...phases.slice(0, -1),
      timed('Enterprise Contract', 301_250, 2_100, ['Chains']),
    ]),
    failOnViolation: false,
  }
}

/** A run that stopped when the training step failed: what run.ts knows by then. */
function pipelineErrorReport(): RunReport {
  const known = knownFromProvenance()
  return {
    verdict: 'error',
    error: [
      'PipelineRun oml-chains/oml-chains-run-7xk2p failed: Failed: Tasks Completed: 1 (Failed: 1, Cancelled 0), Skipped: 0',
      'failing task: train, step: train (Failed: "step-train" exited with code 1)',
      'last 1 lines of train/train:',
      'ValueError: Input X contains NaN.',
    ].join('\n'),
    dataset: {
      url: 'quay.io/mmortari/ml-iris:data',
      digest: 'sha256:b2239d0afbae7a4814b3d656d0ff3de35ddec9861e559ccffc8a401448d7bae0',
    },
    trainerImage: known.trainerImage,
    publicKeyPem,
    timings: timingsDocument(STARTED, [
      ...phases.slice(0, 6),
      timed('Pipeline', 148_500, 61_200, PREPARED, false),
    ]),
    failOnViolation: true,
  }
}

describe('renderSummary', () => {
  it('pass: ec happy day on the real Chains attestation', async () => {
    const summary = renderSummary(passReport())
    expect(summary.split('\n')[0]).toBe('## oml-chains: PASS')
    await expect(summary).toMatchFileSnapshot('./__snapshots__/summary-pass.md')
  })

  it('fail: ec detailed failures, with titles, codes and solutions', async () => {
    const summary = renderSummary(failReport())
    expect(summary.split('\n')[0]).toBe('## oml-chains: FAIL')
    expect(summary).toContain('3 violations, 0 warnings, 4 checks passed.')
    expect(summary).toContain('| Reject rule<br>`main.rejector` | Fails always | None |')
    await expect(summary).toMatchFileSnapshot('./__snapshots__/summary-fail.md')
  })

  it('error: ec gave no report; shows its error right after the diagram, then what is known', async () => {
    const summary = renderSummary(errorReport())
    const lines = summary.split('\n')
    expect(lines[0]).toBe('## oml-chains: ERROR')
    expect(lines[2]).toBe('```mermaid')
    const diagramEnd = lines.indexOf('```')
    expect(lines.slice(diagramEnd + 1, diagramEnd + 5)).toEqual([
      '',
      'The run ended before Enterprise Contract reached a verdict:',
      '',
      '```text',
    ])
    expect(lines[diagramEnd + 5]).toContain('incorrect syntax for --extra-rule-data 0')
    // Said once, in the verdict, not again under the policy results.
    expect(summary.match(/incorrect syntax for --extra-rule-data 1/g)).toHaveLength(1)
    expect(summary).not.toContain('EC report')
    await expect(summary).toMatchFileSnapshot('./__snapshots__/summary-error.md')
  })

  it('error in the Pipeline phase: the PipelineRun failed, the nodes after it not reached', async () => {
    const summary = renderSummary(pipelineErrorReport())
    expect(summary.split('\n')[0]).toBe('## oml-chains: ERROR')
    expect(summary).toContain('Pipeline failed')
    expect(summary).toContain('  class dataset ok\n')
    expect(summary).toContain('  class pipelinerun failed\n')
    expect(summary).toContain('  class model,signature,verdict unreached\n')
    await expect(summary).toMatchFileSnapshot('./__snapshots__/summary-error-pipeline.md')
  })

  it('error before anything is known: only the error', () => {
    const summary = renderSummary({
      verdict: 'error',
      error: "input 'dataset': an OCI reference is required",
      failOnViolation: true,
    })
    expect(summary).toBe(
      [
        '## oml-chains: ERROR',
        '',
        'The run ended before Enterprise Contract reached a verdict:',
        '',
        '```text',
        "input 'dataset': an OCI reference is required",
        '```',
        '',
        'This step fails: no verdict was reached.',
        '',
        '### Policy results',
        '',
        'Enterprise Contract did not run.',
        '',
      ].join('\n'),
    )
  })

  it('gives the plain-HTTP flags only for a plain-HTTP registry', () => {
    const remote = renderSummary(passReport())
    expect(remote).toContain(
      'cosign verify-attestation --key cosign.pub --type slsaprovenance --insecure-ignore-tlog quay.io/mmortari/ml-iris@sha256:bf64e877c24670cf517f52df470beafc611840707cf8ee45535cd1d8313784de\n',
    )
    expect(remote).not.toContain('--allow-http-registry')
    const local = renderSummary(errorReport())
    expect(local).toContain(
      `cosign verify --key cosign.pub --insecure-ignore-tlog --allow-insecure-registry --allow-http-registry registry.local:5000/oml-chains/model@sha256:${'a'.repeat(64)}\n`,
    )
    expect(local).toContain(
      `ec validate image --image registry.local:5000/oml-chains/model@sha256:${'a'.repeat(64)} --public-key cosign.pub --policy policy/config.yaml --ignore-rekor --info\n`,
    )
  })

  it("quotes a user's policy path for the shell and leaves out check.sh", () => {
    const report = passReport()
    report.policy = { path: "ci/my policy's.yaml", ruleData: { min_accuracy: 0.5 } }
    const summary = renderSummary(report)
    expect(summary).toContain(`--policy 'ci/my policy'\\''s.yaml' --ignore-rekor --info`)
    expect(summary).not.toContain('policy/check.sh')
  })
})

describe('escaping', () => {
  const hostile = 'a | b\nsecond line <script>alert(1)</script> & *bold* [x](y) $x$'

  it('a table cell shows the text as written, on one row', () => {
    expect(cellText(hostile)).toBe(
      'a \\| b<br>second line &lt;script&gt;alert(1)&lt;/script&gt; &amp; \\*bold\\* \\[x\\](y) \\$x\\$',
    )
  })

  it('a code span escapes pipes in tables only and outgrows backticks in the text', () => {
    expect(code('a|b')).toBe('`a\\|b`')
    expect(code('a|b', 100, false)).toBe('`a|b`')
    expect(code('x ` y')).toBe('``x ` y``')
    expect(code('`x`')).toBe('`` `x` ``')
  })

  it('a hostile violation stays in its row and its HTML stays text', () => {
    const report = failReport()
    if (report.ec?.verdict !== 'fail') throw new Error('expected a fail')
    const first = report.ec.summary.violations[0] as EcFinding
    report.ec.summary.violations[0] = { ...first, title: 'T | <b>x</b>', msg: hostile }
    const summary = renderSummary(report)
    const row = summary.split('\n').find((line) => line.includes('second line'))
    expect(row).toBe(
      `| T \\| &lt;b&gt;x&lt;/b&gt;<br>\`main.reject_with_term\` | ${cellText(hostile)} | None |`,
    )
    expect(summary).not.toContain('<script>')
    expect(summary).not.toContain('<b>')
  })
})

describe('size cap', () => {
  /** The real detailed-failures findings, repeated `times` times, each message `grow` times longer. */
  function manyFindings(times: number, grow: number): EcFinding[] {
    const real = summarizeEcReport(
      parseEcReport(readFileSync(path.join(fixtures, 'ec/detailed-failures.json'))),
    ).violations
    return Array.from({ length: times }, () => real)
      .flat()
      .map((f) => ({ ...f, msg: f.msg.repeat(grow), solution: (f.solution ?? '').repeat(grow) }))
  }

  function hugeReport(violations: EcFinding[], warnings: EcFinding[]): RunReport {
    const report = failReport()
    if (report.ec?.verdict !== 'fail') throw new Error('expected a fail')
    report.ec.summary = { ...report.ec.summary, violations, warnings }
    return report
  }

  it('caps rows and message length', () => {
    const findings = manyFindings(4_000, 200)
    const summary = renderSummary(hugeReport(findings, findings))
    expect(Buffer.byteLength(summary)).toBeLessThan(SUMMARY_MAX_BYTES / 4)
    expect(summary).toContain('12000 violations, 12000 warnings')
    expect(summary).toContain('And 11950 more: the ec report lists them all.')
    expect(summary).toContain('And 11980 more: the ec report lists them all.')
    const rows = summary.split('\n').filter((line) => line.startsWith('| Reject'))
    expect(rows).toHaveLength(70)
    // 'Fails always (term1)' repeated: cut to 500 characters, the last an ellipsis.
    expect(rows[0]).toContain(`${'Fails always (term1)'.repeat(25).slice(0, 499)}…`)
  })

  it('stays under 1 MiB when escaping multiplies every character', () => {
    const worst = manyFindings(100, 1).map((f) => ({
      ...f,
      title: '&'.repeat(10_000),
      code: '|'.repeat(10_000),
      msg: '&'.repeat(10_000),
      solution: '&'.repeat(10_000),
    }))
    const report = hugeReport(worst, worst)
    report.error = '`'.repeat(100_000)
    report.pipelineRun = '&'.repeat(100_000)
    // The diagram's labels too: every character an entity code there.
    report.trainerImage = '<'.repeat(100_000)
    report.dataset = { url: '"'.repeat(100_000), digest: '#'.repeat(100_000) }
    report.publicKeyPem = 'x'.repeat(100_000)
    report.policy = { path: '&'.repeat(100_000), ruleData: { x: '&'.repeat(100_000) } }
    expect(Buffer.byteLength(renderSummary(report))).toBeLessThan(SUMMARY_MAX_BYTES)
  })
})

describe('reportOutputs', () => {
  const model =
    'quay.io/mmortari/ml-iris@sha256:bf64e877c24670cf517f52df470beafc611840707cf8ee45535cd1d8313784de'

  it('pass: every output', () => {
    expect(reportOutputs(passReport())).toEqual({
      verdict: 'pass',
      digest: 'sha256:bf64e877c24670cf517f52df470beafc611840707cf8ee45535cd1d8313784de',
      image: model,
      violations: '0',
      warnings: '0',
      report: reportPath,
      'public-key': publicKeyPem,
      provenance: `${workDir}/provenance.json`,
      pipelinerun: 'oml-chains-run-hdfv6',
      // No dataset-digest: the TaskRun attestation does not record it.
    })
  })

  it('fail: the counts from the report', () => {
    const outputs = reportOutputs({
      ...failReport(),
      dataset: { url: 'quay.io/mmortari/ml-iris:data', digest: `sha256:${'b'.repeat(64)}` },
    })
    expect(outputs).toMatchObject({
      verdict: 'fail',
      violations: '3',
      warnings: '0',
      report: reportPath,
      'dataset-digest': `sha256:${'b'.repeat(64)}`,
    })
  })

  it('error from ec: no counts and no report path, but what is known', () => {
    const outputs = reportOutputs(errorReport())
    expect(outputs.verdict).toBe('error')
    expect(outputs.digest).toBe(`sha256:${'a'.repeat(64)}`)
    expect(outputs.pipelinerun).toBe('oml-chains-run-hdfv6')
    for (const name of ['violations', 'warnings', 'report'])
      expect(outputs).not.toHaveProperty(name)
  })

  it('error after ec reported (a later phase failed): still no counts', () => {
    const outputs = reportOutputs({ ...passReport(), verdict: 'error', error: 'upload failed' })
    expect(outputs).not.toHaveProperty('violations')
    expect(outputs).not.toHaveProperty('warnings')
  })

  it('error before anything: the verdict only', () => {
    expect(reportOutputs({ verdict: 'error', error: 'x', failOnViolation: true })).toEqual({
      verdict: 'error',
    })
  })
})

describe('violationAnnotations', () => {
  it('one per violation: the rule title and ec message', () => {
    expect(violationAnnotations(failReport())).toEqual([
      { title: 'Reject with term rule', message: 'Fails always (term1)' },
      { title: 'Reject with term rule', message: 'Fails always (term2)' },
      { title: 'Reject rule', message: 'Fails always' },
    ])
    expect(violationAnnotations(passReport())).toEqual([])
    expect(violationAnnotations(errorReport())).toEqual([])
  })

  it('the code when a rule has no title; at most MAX_VIOLATION_ANNOTATIONS, and the summary says so', () => {
    const report = failReport()
    if (report.ec?.verdict !== 'fail') throw new Error('expected a fail')
    const first = report.ec.summary.violations[0] as EcFinding
    report.ec.summary.violations = Array.from({ length: 25 }, () => ({
      ...first,
      title: undefined,
    }))
    const annotations = violationAnnotations(report)
    expect(annotations).toHaveLength(MAX_VIOLATION_ANNOTATIONS)
    expect(annotations[0]?.title).toBe('main.reject_with_term')
    expect(renderSummary(report)).toContain(
      `Annotations show the first ${MAX_VIOLATION_ANNOTATIONS} of the 25 violations.`,
    )
  })
})
