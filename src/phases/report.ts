/**
 * What a run tells its user at the end: the action's outputs, the job summary
 * (Markdown for $GITHUB_STEP_SUMMARY) and an annotation per policy violation.
 * Pure functions over what the run got to know; run.ts does the writing. A run
 * that stopped early reports what it knows, and never a number it did not get.
 *
 * Everything shown comes partly from outside (registry names, policy
 * messages, user paths): text goes into the summary escaped or inside code
 * spans and fenced blocks, so it is always shown as written, never rendered
 * as Markdown or HTML, and every piece is capped so the summary stays far
 * below GitHub's 1 MiB limit.
 */
import { formatDuration } from '../duration.js'
import { EMBEDDED_REGISTRY } from '../plan.js'
import { isPlainHttpRegistry } from '../registry-client.js'
import type { TimingsDocument } from '../timing.js'
import type { RuleData } from '../tools/ec/policy-config.js'
import type { EcFinding, EcSummary } from '../tools/ec/report.js'
import type { EcValidation } from '../tools/ec/validate.js'
import { keyFingerprint, renderChain } from './report-chain.js'
import { criticalPathLine, ganttChart } from './report-timings.js'
import { clip, CONTROL, count, oneLine } from './report-text.js'

export type RunVerdict = 'pass' | 'fail' | 'error'

/** The model image the run pushed. */
export interface ModelImage {
  /** Host and port: `registry.local:5000`, `quay.io`. */
  registry: string
  /** Path inside the registry: `oml-chains/model`. */
  repository: string
  /** `sha256:<hex>`. */
  digest: string
}

export interface DatasetFacts {
  /** The dataset as the user named it (tag or digest). */
  url: string
  /** `sha256:<hex>` it resolved to, when known. */
  digest?: string
}

export interface PolicyFacts {
  /** The `policy` input as given; undefined for the bundled policy/config.yaml. */
  path?: string
  /** Rule data the action added to every source of the policy (see verify.ts). */
  ruleData?: RuleData
}

/**
 * Everything a run knows when it ends. Only the verdict is certain: a run that
 * stopped early leaves out what it never learnt.
 */
export interface RunReport {
  verdict: RunVerdict
  /** Why there is no verdict. Defaults to ec's error when ec gave no report. */
  error?: string
  /** Every bad input, when the inputs stopped the run (`error` holds them one per line). */
  inputErrors?: { input: string; message: string }[]
  model?: ModelImage
  dataset?: DatasetFacts
  /** The image that ran the training step, `repo@sha256:…` (from the provenance). */
  trainerImage?: string
  /** Test accuracy of the model (the ACCURACY result, from the provenance). */
  accuracy?: number
  pipelineRun?: string
  publicKeyPem?: string
  /** Where the PipelineRun provenance statement (JSON) was written. */
  provenancePath?: string
  ec?: EcValidation
  policy?: PolicyFacts
  /** When each phase ran (its phases in the order they ended). */
  timings?: TimingsDocument
  /** Where the timings were written as JSON (the `timings` output). */
  timingsPath?: string
  /** The fail-on-violation input: whether the step fails on verdict fail (an error always fails it). */
  failOnViolation: boolean
}

/**
 * GitHub shows at most 10 error annotations per step, and the failing step's
 * own `core.setFailed` message is one of them.
 */
export const MAX_VIOLATION_ANNOTATIONS = 9

/** GitHub refuses a job summary over 1 MiB. */
export const SUMMARY_MAX_BYTES = 1024 * 1024

// Caps, in characters before escaping. Escaping at most quintuples a character
// (`&` is `&amp;`), so the finding tables stay under
// (50 + 20) rows * 5 * (200 + 500 + 300) + code spans ≈ 400 KB.
const MAX_VIOLATION_ROWS = 50
const MAX_WARNING_ROWS = 20
const MAX_TITLE = 200
const MAX_MESSAGE = 500
const MAX_SOLUTION = 300
/** References (up to 255 + 72 characters), paths, names. */
const MAX_NAME = 400
/** Error text, the public key, the rule data: fenced blocks, not escaped. */
const MAX_BLOCK = 8_000
const MAX_ANNOTATION_MESSAGE = 1_000

/** `registry/repository@sha256:…`. */
export function modelReference(model: ModelImage): string {
  return `${model.registry}/${model.repository}@${model.digest}`
}

/** ec's findings, when ec wrote a report. */
function ecSummaryOf(report: RunReport): EcSummary | undefined {
  return report.ec && report.ec.verdict !== 'error' ? report.ec.summary : undefined
}

/** Why the run has no verdict: the run's own error, else ec's. */
function errorOf(report: RunReport): string | undefined {
  if (report.error !== undefined) return report.error
  return report.ec?.verdict === 'error' ? report.ec.error : undefined
}

/**
 * The action outputs the run can fill, by action.yml name. An output that is
 * not known is left out rather than guessed: `violations` and `warnings` are
 * set only with a pass or fail verdict from ec's report, so a workflow gating
 * on `violations == '0'` cannot pass after an error; `report` only when ec
 * wrote one.
 */
export function reportOutputs(report: RunReport): Record<string, string> {
  const outputs: Record<string, string> = { verdict: report.verdict }
  if (report.model) {
    outputs.digest = report.model.digest
    outputs.image = modelReference(report.model)
  }
  const summary = ecSummaryOf(report)
  if (summary && report.verdict !== 'error') {
    outputs.violations = String(summary.violations.length)
    outputs.warnings = String(summary.warnings.length)
  }
  if (report.ec && report.ec.verdict !== 'error') outputs.report = report.ec.reportPath
  if (report.publicKeyPem) outputs['public-key'] = report.publicKeyPem
  if (report.dataset?.digest) outputs['dataset-digest'] = report.dataset.digest
  if (report.provenancePath) outputs.provenance = report.provenancePath
  if (report.pipelineRun) outputs.pipelinerun = report.pipelineRun
  if (report.timingsPath) outputs.timings = report.timingsPath
  return outputs
}

export interface ViolationAnnotation {
  /** The rule's title, else its code. */
  title: string
  /** ec's message for the violation. */
  message: string
}

/**
 * One annotation per violation, for `core.error(message, {title})`: the first
 * MAX_VIOLATION_ANNOTATIONS only (the summary says how many there are).
 */
export function violationAnnotations(report: RunReport): ViolationAnnotation[] {
  const violations = ecSummaryOf(report)?.violations ?? []
  return violations.slice(0, MAX_VIOLATION_ANNOTATIONS).map((finding) => ({
    title: clip(oneLine(ruleName(finding)), MAX_TITLE),
    message: clip(finding.msg, MAX_ANNOTATION_MESSAGE),
  }))
}

function ruleName(finding: EcFinding): string {
  return finding.title ?? finding.code ?? 'Policy violation'
}

/**
 * The job summary: the verdict and the chain the run built (or where it
 * stopped), drawn; then what the run knows, then how to check it again.
 */
export function renderSummary(report: RunReport): string {
  const sections = [
    `## oml-chains: ${report.verdict.toUpperCase()}`,
    renderChain(report),
    verdictSection(report),
    factsSection(report),
    policySection(report),
    timingsSection(report.timings),
    publicKeySection(report.publicKeyPem),
    recheckSection(report),
  ]
  return `${sections.filter((s) => s !== '').join('\n\n')}\n`
}

function verdictSection(report: RunReport): string {
  const lines: string[] = []
  const summary = ecSummaryOf(report)
  if (report.verdict === 'pass') {
    const warnings = summary?.warnings.length ?? 0
    lines.push(
      'Enterprise Contract checked the model against the policy and found no violations' +
        (warnings > 0 ? ` (${count(warnings, 'warning')}).` : '.'),
    )
  } else if (report.verdict === 'fail') {
    const violations = summary?.violations.length
    lines.push(
      violations === undefined
        ? 'The model does not meet the policy.'
        : `Enterprise Contract found ${count(violations, 'violation')}: the model does not meet the policy.`,
    )
  } else {
    lines.push('The run ended before Enterprise Contract reached a verdict:', '')
    const error = errorOf(report) ?? 'no error message was recorded'
    lines.push(fenced(clip(error, MAX_BLOCK), 'text'))
  }
  // An error fails the step whatever fail-on-violation says: that input
  // tolerates a model the policy rejects, not a run that never got a verdict.
  if (report.verdict === 'error') {
    lines.push('', 'This step fails: no verdict was reached.')
  } else if (report.verdict === 'fail') {
    lines.push(
      '',
      report.failOnViolation
        ? 'This step fails (fail-on-violation: true).'
        : 'This step does not fail (fail-on-violation: false): later steps can check the `verdict` output.',
    )
  }
  return lines.join('\n')
}

function factsSection(report: RunReport): string {
  const rows: [string, string][] = []
  if (report.model) rows.push(['Model', code(modelReference(report.model))])
  if (report.dataset) {
    const { url, digest } = report.dataset
    if (digest === undefined) rows.push(['Dataset', `${code(url)} (digest not known)`])
    else rows.push(['Dataset', code(url.includes('@') ? url : `${url}@${digest}`)])
  }
  if (report.trainerImage) rows.push(['Trainer image', code(report.trainerImage)])
  if (report.accuracy !== undefined) {
    const minimum = report.policy?.ruleData?.min_accuracy
    const text = String(report.accuracy)
    rows.push([
      'Accuracy',
      typeof minimum === 'number' ? `${text} (policy minimum ${minimum})` : text,
    ])
  }
  if (report.pipelineRun) rows.push(['PipelineRun', code(report.pipelineRun)])
  if (report.provenancePath) rows.push(['Provenance', code(report.provenancePath)])
  if (report.ec && report.ec.verdict !== 'error') {
    rows.push(['EC report', code(report.ec.reportPath)])
  }
  if (report.policy) {
    const path = report.policy.path
    rows.push(['Policy', path === undefined ? `bundled ${code('policy/config.yaml')}` : code(path)])
  }
  if (report.ec && report.ec.verdict !== 'error') {
    rows.push(['ec version', code(report.ec.report['ec-version'])])
  }
  if (rows.length === 0) return ''
  const heading = report.verdict === 'error' ? '### What is known' : '### Run'
  return [heading, '', table(['', ''], rows)].join('\n')
}

function policySection(report: RunReport): string {
  const lines = ['### Policy results', '']
  const ec = report.ec
  if (ec === undefined) {
    lines.push('Enterprise Contract did not run.')
    return lines.join('\n')
  }
  if (ec.verdict === 'error') {
    lines.push(`Enterprise Contract gave no report${ranTwice(ec)}.`)
    // Shown above already when it is the run's error.
    if (ec.error !== errorOf(report)) lines.push('', fenced(clip(ec.error, MAX_BLOCK), 'text'))
    return lines.join('\n')
  }
  const { violations, warnings, successes } = ec.summary
  lines.push(
    `${count(violations.length, 'violation')}, ${count(warnings.length, 'warning')}, ` +
      `${count(successes, 'check')} passed${ranTwice(ec)}.`,
  )
  if (violations.length > MAX_VIOLATION_ANNOTATIONS) {
    lines.push(
      '',
      `Annotations show the first ${MAX_VIOLATION_ANNOTATIONS} of the ${violations.length} violations.`,
    )
  }
  const tables = [
    findingsTable('Violations', violations, MAX_VIOLATION_ROWS),
    findingsTable('Warnings', warnings, MAX_WARNING_ROWS),
  ].filter((t) => t !== '')
  if (tables.length > 0) lines.push('', tables.join('\n\n'))
  return lines.join('\n')
}

function ranTwice(ec: EcValidation): string {
  return ec.attempts > 1 ? ' (ec ran twice: the first run met a registry or network error)' : ''
}

function findingsTable(heading: string, findings: readonly EcFinding[], maxRows: number): string {
  if (findings.length === 0) return ''
  const shown = findings.slice(0, maxRows)
  const withSolution = shown.some((f) => f.solution !== undefined)
  const rows = shown.map((f) => {
    const row = [ruleCell(f), cellText(f.msg, MAX_MESSAGE)]
    if (withSolution) row.push(f.solution === undefined ? '' : cellText(f.solution, MAX_SOLUTION))
    return row
  })
  const header = withSolution ? ['Rule', 'Message', 'Solution'] : ['Rule', 'Message']
  const lines = [`#### ${heading}`, '', table(header, rows)]
  const more = findings.length - shown.length
  if (more > 0) {
    lines.push('', `And ${more} more: the ec report lists them all.`)
  }
  return lines.join('\n')
}

/** Title and code, one per line; either may be missing (ec's own results have no code). */
function ruleCell(finding: EcFinding): string {
  const parts: string[] = []
  if (finding.title !== undefined) parts.push(cellText(finding.title, MAX_TITLE))
  if (finding.code !== undefined) parts.push(code(finding.code, MAX_TITLE))
  return parts.length > 0 ? parts.join('<br>') : '(no rule code)'
}

function timingsSection(timings: TimingsDocument | undefined): string {
  if (!timings || timings.phases.length === 0) return ''
  const rows = timings.phases.map((t) => [
    cellText(t.phase, MAX_NAME),
    formatDuration(t.start),
    formatDuration(t.ms),
    cellText([...t.after, ...t.waits.map((w) => `${w.phase} (part-way)`)].join(', '), MAX_NAME),
    t.ok ? 'done' : 'failed',
  ])
  return [
    '### Timings',
    '',
    ganttChart(timings),
    '',
    criticalPathLine(timings),
    '',
    table(['Phase', 'Started at', 'Time', 'Waited for', 'Result'], rows),
  ].join('\n')
}

function publicKeySection(publicKeyPem: string | undefined): string {
  if (!publicKeyPem) return ''
  const lines = [
    '### Public key',
    '',
    "It verifies the model's signature and attestations (also the `public-key` output).",
    '',
    fenced(clip(publicKeyPem.trim(), MAX_BLOCK), 'text'),
  ]
  const fingerprint = keyFingerprint(publicKeyPem)
  if (fingerprint) {
    lines.push(
      '',
      `Fingerprint ${code(fingerprint, MAX_NAME, false)}: the keyid in Chains' signatures.`,
    )
  }
  return lines.join('\n')
}

/** The commands that check the model again later, outside the action. */
function recheckSection(report: RunReport): string {
  if (!report.model) return ''
  const image = shellWord(clip(modelReference(report.model), MAX_NAME))
  const registry = report.model.registry
  // Two flags because cosign v2 is inconsistent: `verify` speaks plain HTTP to a
  // registry only with --allow-insecure-registry, `verify-attestation` only with
  // --allow-http-registry (checked with cosign v2.6.5; v3 takes either).
  const http = isPlainHttpRegistry(registry)
    ? ' --allow-insecure-registry --allow-http-registry'
    : ''
  const policyPath = report.policy?.path
  const policy = shellWord(clip(policyPath ?? 'policy/config.yaml', MAX_NAME))
  const commands = [
    `cosign verify --key cosign.pub --insecure-ignore-tlog${http} ${image}`,
    `cosign verify-attestation --key cosign.pub --type slsaprovenance --insecure-ignore-tlog${http} ${image}`,
    `ec validate image --image ${image} --public-key cosign.pub --policy ${policy} --ignore-rekor --info`,
  ]
  const notes = [
    '- `--insecure-ignore-tlog` and `--ignore-rekor`: Chains signs without a transparency log (Rekor), so there is no log entry to check.',
  ]
  if (http) {
    notes.push(
      `- ${code(registry, MAX_NAME, false)} is a plain-HTTP registry, hence \`--allow-insecure-registry --allow-http-registry\` (cosign \`verify\` needs the first, \`verify-attestation\` the second); ec reaches it without a flag.`,
    )
  }
  if (registry === EMBEDDED_REGISTRY) {
    notes.push(
      `- ${code(registry, MAX_NAME, false)} is the registry the action ran next to the kind cluster: it is there only while it runs (\`keep-cluster: true\`), and the runner reaches it through \`127.0.0.1 registry.local\` in /etc/hosts.`,
    )
  }
  notes.push(
    policyPath === undefined
      ? '- `policy/config.yaml` is the bundled policy: run ec from the root of a checkout of oml-chains-action at the version this workflow uses (the config names `./policy/rules`).'
      : '- Run ec from the workspace root: ec resolves relative paths in the policy config against its working directory.',
  )
  const lines = [
    '### Check it again',
    '',
    'Save the public key above as `cosign.pub`, then:',
    '',
    fenced(commands.join('\n'), 'sh'),
    '',
    notes.join('\n'),
  ]
  const ruleData = report.policy?.ruleData
  if (ruleData && Object.keys(ruleData).length > 0) {
    lines.push(
      '',
      "The action gave the policy this rule data, added to each source's `ruleData` in the policy config; add it to your copy the same way:",
      '',
      fenced(clip(JSON.stringify(ruleData, null, 2), MAX_BLOCK), 'json'),
    )
    const checkScript = policyPath === undefined ? checkShCommand(ruleData, image) : undefined
    if (checkScript) {
      lines.push(
        '',
        'Or, from that checkout, `policy/check.sh` passes the rule data for you:',
        '',
        fenced(checkScript, 'sh'),
      )
    }
  }
  return lines.join('\n')
}

/** What check.sh accepts as a prefix (it writes them into JSON unescaped). */
const CHECK_SH_PREFIX = /^[A-Za-z0-9._:/@-]+$/

/**
 * `policy/check.sh` with the rule data as its options, when the rule data is
 * exactly what its options can say; otherwise undefined.
 */
function checkShCommand(ruleData: RuleData, image: string): string | undefined {
  const args = ['policy/check.sh']
  for (const [key, value] of Object.entries(ruleData)) {
    if (key === 'allowed_dataset_prefixes' && Array.isArray(value)) {
      for (const prefix of value) {
        if (typeof prefix !== 'string' || !CHECK_SH_PREFIX.test(prefix)) return undefined
        args.push('--allowed-prefix', shellWord(prefix))
      }
    } else if (key === 'min_accuracy' && typeof value === 'number') {
      args.push('--min-accuracy', String(value))
    } else {
      return undefined
    }
  }
  return [...args, image, 'cosign.pub'].join(' ')
}

// --- Markdown --------------------------------------------------------------

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' }

/**
 * Text for a table cell, shown as written: HTML characters as entities,
 * Markdown punctuation backslash-escaped (`$` too: GitHub renders `$…$` as
 * math), line breaks as `<br>`, which keeps the row on one line.
 */
export function cellText(text: string, max = MAX_MESSAGE): string {
  return clip(text.replace(CONTROL, '').replace(/\t/g, ' ').trim(), max)
    .replace(/[&<>]/g, (c) => HTML_ESCAPES[c] ?? c)
    .replace(/[\\`*_[\]|~$]/g, '\\$&')
    .replace(/\r\n?|\n/g, '<br>')
}

/**
 * An inline code span: shows its text literally (no HTML, no Markdown).
 * Inside a table a `|` must still be escaped, which GitHub undoes there;
 * outside one the backslash would show, hence `inTable`.
 */
export function code(text: string, max = MAX_NAME, inTable = true): string {
  let body = clip(oneLine(text.replace(CONTROL, '')), max)
  if (inTable) body = body.replace(/\|/g, '\\|')
  const fence = '`'.repeat(longestRun(body, '`') + 1)
  // A space keeps a backtick at either end from joining the fence.
  const pad = /^[` ]|[` ]$/.test(body) ? ' ' : ''
  return `${fence}${pad}${body}${pad}${fence}`
}

/** A fenced code block whose fence no line of `text` can close. */
function fenced(text: string, info: string): string {
  const fence = '`'.repeat(Math.max(3, longestRun(text, '`') + 1))
  return `${fence}${info}\n${text.replace(/\n+$/, '')}\n${fence}`
}

function longestRun(text: string, char: string): number {
  let longest = 0
  let run = 0
  for (const c of text) {
    run = c === char ? run + 1 : 0
    longest = Math.max(longest, run)
  }
  return longest
}

/** A table of cells already escaped. */
function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** A word for a POSIX shell: as is when it is plainly safe, else single-quoted. */
function shellWord(text: string): string {
  if (/^[A-Za-z0-9_./:@%+=,-]+$/.test(text)) return text
  return `'${text.replace(/'/g, `'\\''`)}'`
}
