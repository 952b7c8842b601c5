import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../../../test/harness/tools.js'
import { EcReportError, parseEcReport, summarizeEcReport } from './report.js'

// Reports real ec printed in its own acceptance tests (see test/fixtures/ec/README.md).
const fixture = (name: string) => readFile(path.join(repoRoot, 'test/fixtures/ec', name), 'utf8')
const summaryOf = async (name: string) => summarizeEcReport(parseEcReport(await fixture(name)))

const image = (repo: string) =>
  `\${REGISTRY}/acceptance/${repo}@sha256:\${REGISTRY_acceptance/${repo}:latest_DIGEST}`

describe('parseEcReport on reports real ec printed', () => {
  it('reads the top-level fields ec writes', async () => {
    const report = parseEcReport(await fixture('ignore-rekor.json'))
    expect(report.success).toBe(true)
    expect(report.key).toBe('${known_PUBLIC_KEY_JSON}')
    expect(report['ec-version']).toBe('${EC_VERSION}')
    expect(report['effective-time']).toBe('${TIMESTAMP}')
    expect(report.policy.publicKey).toBe('${known_PUBLIC_KEY}')
    expect(report.policy.sources?.[0]?.policy).toEqual([
      'git::${GITHOST}/git/ignore-rekor.git?ref=${LATEST_COMMIT}',
    ])
    expect(report.components).toHaveLength(1)
    const [component] = report.components
    expect(component?.name).toBe('Unnamed')
    expect(component?.containerImage).toBe(image('ignore-rekor'))
    expect(component?.success).toBe(true)
    expect(component?.attestations?.[0]?.predicateType).toBe('https://slsa.dev/provenance/v0.2')
  })

  it('reads the compact JSON ec writes to a file as it reads the indented snapshot', async () => {
    const text = await fixture('format-options-output-file.json')
    const compact = JSON.stringify(JSON.parse(text))
    expect(parseEcReport(compact)).toEqual(parseEcReport(text))
  })

  it('says what is wrong with a file that is not a report', async () => {
    // A real report with one thing broken at a time.
    interface Doc {
      success?: unknown
      components: { containerImage?: unknown; violations: { msg?: unknown }[] }[] | null
      'ec-version'?: unknown
    }
    const real = JSON.parse(await fixture('detailed-failures.json')) as Doc
    const broken = (change: (doc: Doc) => void) => {
      const doc = structuredClone(real)
      change(doc)
      return () => parseEcReport(JSON.stringify(doc), 'report.json')
    }

    expect(() => parseEcReport('', 'report.json')).toThrow(EcReportError)
    expect(() => parseEcReport('', 'report.json')).toThrow(/^report\.json is not JSON: /)
    expect(() => parseEcReport('[]', 'report.json')).toThrow(
      'report.json is not an ec report: not a JSON object',
    )
    expect(broken((d) => delete d.success)).toThrow(
      'report.json is not an ec report: "success" is not true or false',
    )
    expect(broken((d) => (d.components = null))).toThrow('"components" is not a list')
    expect(broken((d) => delete d.components?.[0]?.violations[1]?.msg)).toThrow(
      'report.json is not an ec report: components[0].violations[1] has no "msg" string',
    )
    expect(broken((d) => delete d.components?.[0]?.containerImage)).toThrow(
      'components[0].containerImage is not a string',
    )
    expect(broken((d) => delete d['ec-version'])).toThrow('"ec-version" is not a string')
  })

  it("takes ec's stderr for what it is: not a report", async () => {
    const stderr = await fixture('invalid-extra-rule-data.stderr.txt')
    expect(() => parseEcReport(stderr)).toThrow(/^ec report is not JSON: /)
  })
})

describe('summarizeEcReport on reports real ec printed', () => {
  it('a pass with successes listed (--show-successes)', async () => {
    expect(await summaryOf('happy-day.json')).toEqual({
      success: true,
      violations: [],
      warnings: [],
      successes: 4,
    })
  })

  it('a pass without --show-successes counts no successes', async () => {
    expect(await summaryOf('ignore-rekor.json')).toEqual({
      success: true,
      violations: [],
      warnings: [],
      successes: 0,
    })
  })

  it('a pass with a warning that has no rule code', async () => {
    const summary = await summaryOf('future-failure-is-a-warning.json')
    expect(summary.success).toBe(true)
    expect(summary.warnings).toEqual([
      {
        msg: 'Fails in 2099. This will become a failure starting on ${TIMESTAMP}',
        component: 'Unnamed',
        image: image('ec-happy-day'),
      },
    ])
    expect(summary.successes).toBe(3)
  })

  it('warnings ec makes itself, without metadata', async () => {
    const summary = await summaryOf('volatile-config-warnings.json')
    expect(summary.success).toBe(true)
    expect(summary.warnings.map((w) => w.msg)).toEqual([
      "Volatile exclude rule 'test.component_scoped_rule' has no expiration date set",
      "Volatile exclude rule 'test.component_scoped_rule' is scoped to component 'Unnamed'",
      "Volatile exclude rule 'test.rule_expiring_soon' will expire (effective until: ${TIMESTAMP})",
      "Volatile exclude rule 'test.rule_pending_activation' is pending activation (effective on: ${TIMESTAMP})",
      "Volatile exclude rule 'test.rule_with_no_expiration' has no expiration date set",
    ])
    expect(summary.warnings.every((w) => w.code === undefined)).toBe(true)
  })

  it('a failure without --info: codes and messages, no titles', async () => {
    const summary = await summaryOf('format-options-output-file.json')
    expect(summary).toEqual({
      success: false,
      violations: [
        { code: 'main.reject_with_term', msg: 'Fails always (term1)' },
        { code: 'main.reject_with_term', msg: 'Fails always (term2)' },
        { code: 'main.rejector', msg: 'Fails always' },
      ].map((v) => ({ ...v, component: 'Unnamed', image: image('image') })),
      warnings: [],
      successes: 4,
    })
  })

  it('a failure with --info: titles and solutions too', async () => {
    const summary = await summaryOf('detailed-failures.json')
    expect(summary.success).toBe(false)
    expect(summary.violations[0]).toEqual({
      code: 'main.reject_with_term',
      title: 'Reject with term rule',
      msg: 'Fails always (term1)',
      solution: 'None',
      component: 'Unnamed',
      image: image('image'),
    })
    expect(summary.violations.map((v) => v.title)).toEqual([
      'Reject with term rule',
      'Reject with term rule',
      'Reject rule',
    ])
    expect(summary.successes).toBe(4)
  })

  it('violations and warnings side by side', async () => {
    const summary = await summaryOf('severity-adjusted.json')
    expect(summary.success).toBe(false)
    expect(summary.violations.map((v) => v.msg)).toEqual([
      'Failure to failure',
      'Warning to failure',
    ])
    expect(summary.warnings.map((v) => v.msg)).toEqual(['Failure to warning', 'Warning to warning'])
  })

  it('a failure of the built-in signature checks', async () => {
    const summary = await summaryOf('invalid-image-signature.json')
    expect(summary.success).toBe(false)
    expect(summary.violations.map((v) => v.code)).toEqual([
      'builtin.attestation.signature_check',
      'builtin.image.signature_check',
    ])
    expect(summary.successes).toBe(0)
  })
})
