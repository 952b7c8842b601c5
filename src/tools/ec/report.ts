/**
 * The JSON report `ec validate image --output json=<file>` writes, and the
 * flat summary the action reports from it. Field names are ec's own (Conforma
 * CLI v0.9.x, `internal/applicationsnapshot/report.go`), checked against the
 * reports real ec printed in its acceptance tests (test/fixtures/ec/).
 */
import { UserError } from '../../errors.js'
import { isRecord, parseJson } from '../../json.js'

/**
 * Metadata of one rule result. Every field is optional: `code` is missing on
 * results ec makes itself (volatile-config warnings) and on rules without
 * METADATA; `title`, `description` and `solution` come only with `--info`.
 */
export interface EcResultMetadata {
  /** `<package>.<short_name>`, e.g. `builtin.image.signature_check`. */
  code?: string
  title?: string
  description?: string
  solution?: string
  collections?: string[]
  /** The term a result is about (`code:term` excludes it): one or several. */
  term?: string | string[]
  effective_on?: string
  severity?: string
  [key: string]: unknown
}

/** One violation, warning or success. */
export interface EcResult {
  msg: string
  metadata?: EcResultMetadata
  outputs?: string[]
}

export interface EcSignature {
  keyid: string
  sig: string
  certificate?: string
  chain?: string[]
  metadata?: Record<string, string>
}

export interface EcAttestation {
  type?: string
  predicateType?: string
  predicateBuildType?: string
  signatures?: EcSignature[]
}

/** One validated image. ec leaves out empty lists. */
export interface EcComponent {
  /** `Unnamed` for `--image`. */
  name: string
  /** The image as validated, `repo@sha256:...`. */
  containerImage: string
  source?: Record<string, unknown>
  violations?: EcResult[]
  warnings?: EcResult[]
  /** Listed only with `--show-successes`. */
  successes?: EcResult[]
  /** True when the component has no violations. */
  success: boolean
  signatures?: EcSignature[]
  attestations?: EcAttestation[]
}

/** A policy source as ec echoes it back (git sources pinned to a commit). */
export interface EcPolicySource {
  name?: string
  policy?: string[]
  data?: string[]
  ruleData?: Record<string, unknown>
  config?: { include?: string[]; exclude?: string[] }
  [key: string]: unknown
}

/** The EnterpriseContractPolicy spec ec validated against. */
export interface EcPolicySpec {
  name?: string
  description?: string
  sources?: EcPolicySource[]
  rekorUrl?: string
  publicKey?: string
  [key: string]: unknown
}

export interface EcReport {
  /** True when every component succeeded. */
  success: boolean
  snapshot?: string
  components: EcComponent[]
  /** The public key as given (PEM), or empty for keyless. */
  key: string
  policy: EcPolicySpec
  'ec-version': string
  /** RFC 3339. */
  'effective-time': string
}

/** A violation or warning, flattened out of its component. */
export interface EcFinding {
  /** Missing for results without a rule code (see EcResultMetadata). */
  code?: string
  title?: string
  msg: string
  solution?: string
  /** Name of the component (ec's `Unnamed` for a single `--image`). */
  component: string
  /** The component's image, `repo@sha256:...`. */
  image: string
}

export interface EcSummary {
  success: boolean
  violations: EcFinding[]
  warnings: EcFinding[]
  /** Number of passed checks; 0 unless ec ran with `--show-successes`. */
  successes: number
}

/** A file that is not an ec JSON report. */
export class EcReportError extends UserError {
  override name = 'EcReportError'
}

/** Parses ec's JSON report and checks the fields the action reads. */
export function parseEcReport(text: Uint8Array | string, source = 'ec report'): EcReport {
  const value = parseJson(text, (reason) => new EcReportError(`${source} is not JSON: ${reason}`))
  const fail = (problem: string) => new EcReportError(`${source} is not an ec report: ${problem}`)
  if (!isRecord(value)) throw fail('not a JSON object')
  if (typeof value.success !== 'boolean') throw fail('"success" is not true or false')
  if (!Array.isArray(value.components)) throw fail('"components" is not a list')
  value.components.forEach((component, index) => checkComponent(component, index, fail))
  if (typeof value.key !== 'string') throw fail('"key" is not a string')
  if (!isRecord(value.policy)) throw fail('"policy" is not an object')
  for (const field of ['ec-version', 'effective-time'] as const) {
    if (typeof value[field] !== 'string') throw fail(`"${field}" is not a string`)
  }
  return value as unknown as EcReport
}

function checkComponent(value: unknown, index: number, fail: (problem: string) => Error): void {
  const where = `components[${index}]`
  if (!isRecord(value)) throw fail(`${where} is not an object`)
  for (const field of ['name', 'containerImage'] as const) {
    if (typeof value[field] !== 'string') throw fail(`${where}.${field} is not a string`)
  }
  if (typeof value.success !== 'boolean') throw fail(`${where}.success is not true or false`)
  for (const list of ['violations', 'warnings', 'successes'] as const) {
    const results = value[list]
    if (results === undefined) continue
    if (!Array.isArray(results)) throw fail(`${where}.${list} is not a list`)
    results.forEach((result: unknown, i) => {
      if (!isRecord(result) || typeof result.msg !== 'string') {
        throw fail(`${where}.${list}[${i}] has no "msg" string`)
      }
      if (result.metadata !== undefined && !isRecord(result.metadata)) {
        throw fail(`${where}.${list}[${i}].metadata is not an object`)
      }
    })
  }
}

/** The report's verdict with every component's violations and warnings in one list each. */
export function summarizeEcReport(report: EcReport): EcSummary {
  const summary: EcSummary = {
    success: report.success,
    violations: [],
    warnings: [],
    successes: 0,
  }
  for (const component of report.components) {
    summary.violations.push(...findings(component, component.violations))
    summary.warnings.push(...findings(component, component.warnings))
    summary.successes += component.successes?.length ?? 0
  }
  return summary
}

function findings(component: EcComponent, results: EcResult[] = []): EcFinding[] {
  return results.map(({ msg, metadata = {} }) => {
    const finding: EcFinding = { msg, component: component.name, image: component.containerImage }
    // Only strings: metadata is free-form in rules, and a summary must not print objects.
    if (typeof metadata.code === 'string') finding.code = metadata.code
    if (typeof metadata.title === 'string') finding.title = metadata.title
    if (typeof metadata.solution === 'string') finding.solution = metadata.solution
    return finding
  })
}
