/**
 * `ec validate image` for one image by digest, and what its outcome means.
 *
 * ec exits 1 both when the policy fails (report written) and when it cannot
 * decide (no report). So the verdict comes from the report file: `success:
 * true` passes, `success: false` fails, and no readable report is an error
 * with ec's last words. `--strict=false` keeps the exit code out of it (0
 * whenever a report was written), which leaves a non-zero exit to errors.
 */
import { mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import * as core from '@actions/core'
import { UserError, errorMessage } from '../../errors.js'
import { execRunner, type CommandResult, type CommandRunner } from '../exec.js'
import { writePolicyWithRuleData, type RuleData } from './policy-config.js'
import { parseEcReport, summarizeEcReport, type EcReport, type EcSummary } from './report.js'
import { transientError, transientViolation } from './transient.js'

export interface ValidateImageOptions {
  /** Path of the ec binary (from installEc). */
  ec: string
  /** The image, by digest: `repo@sha256:<hex>`. */
  image: string
  /** Path of the PEM public key the image's signature and attestations must verify with. */
  publicKey: string
  /** Path of the policy config: YAML or JSON, named `*.yaml`, `*.yml` or `*.json`. */
  policy: string
  /** Where ec writes its JSON report. Its directory also receives the config copy for rule data. */
  reportPath: string
  /** Rule data for the policy's rules (lists and numbers too); see policy-config.ts. */
  ruleData?: RuleData
  /**
   * Where ec runs: it resolves a policy source's relative path (`./policy/rules`)
   * against its working directory, not against the config file.
   */
  cwd?: string
  /** ec's own deadline (`--timeout`); ec's default is 5 minutes. */
  timeoutMs?: number
  run?: CommandRunner
  /** Pause before the one retry after a registry or network error. Default 10 s. */
  retryDelayMs?: number
}

export type EcVerdict = 'pass' | 'fail' | 'error'

interface EcRun {
  /** Absolute path ec was told to write its JSON report to. */
  reportPath: string
  /** The policy config ec was given: the user's, or the copy with rule data. */
  policyPath: string
  exitCode: number
  /** ec's stderr on the last attempt (its log and, on an error, why). */
  stderr: string
  /** 1, or 2 when the first run met a registry or network error. */
  attempts: number
}

type EcOutcome =
  | { verdict: 'pass' | 'fail'; report: EcReport; summary: EcSummary }
  | { verdict: 'error'; error: string }

export type EcValidation = EcRun & EcOutcome

/** ec cuts `--output` values at commas (a list flag) and reads `?...` as format options. */
const UNSAFE_IN_OUTPUT = /[,?]/

/** The arguments of one `ec validate image` run. */
export function ecValidateArgs(options: {
  image: string
  publicKey: string
  policy: string
  reportPath: string
  timeoutMs?: number
}): string[] {
  const args = ['validate', 'image', '--image', options.image]
  args.push('--public-key', options.publicKey, '--policy', options.policy)
  // No Rekor: Chains runs with transparency off, so there is no entry to look up.
  args.push('--ignore-rekor')
  // --info adds each rule's title, description and solution; --show-successes lists passed checks.
  args.push('--info', '--show-successes', '--strict=false')
  args.push('--output', `json=${options.reportPath}`)
  if (options.timeoutMs !== undefined) {
    args.push('--timeout', `${Math.max(1, Math.ceil(options.timeoutMs / 1000))}s`)
  }
  return args
}

/**
 * Runs ec on `image` and maps its outcome to a verdict. A registry or network
 * error (in stderr, or as the only cause of failed built-in checks; see
 * transient.ts) gets one more run after a pause. Throws only for bad options;
 * anything ec does is in the result.
 */
export async function validateImage(options: ValidateImageOptions): Promise<EcValidation> {
  if (!/@sha256:[0-9a-f]{64}$/.test(options.image)) {
    throw new UserError(`ec validates an image by digest (repo@sha256:<hex>), got ${options.image}`)
  }
  if (!/\.(json|yaml|yml)$/.test(options.policy)) {
    // Without one of these, ec takes the value for inline config or a cluster resource name.
    throw new UserError(`policy config ${options.policy} must be named *.yaml, *.yml or *.json`)
  }
  const reportPath = path.resolve(options.reportPath)
  if (UNSAFE_IN_OUTPUT.test(reportPath)) {
    throw new UserError(`ec report path ${reportPath} must not contain "," or "?"`)
  }
  await mkdir(path.dirname(reportPath), { recursive: true })
  // Absolute paths: ec guesses from the text whether a value is a file, a URL, inline
  // config or a cluster resource name, and an absolute path can only be a file.
  let policyPath = path.resolve(options.policy)
  if (options.ruleData && Object.keys(options.ruleData).length > 0) {
    policyPath = await writePolicyWithRuleData(
      policyPath,
      options.ruleData,
      path.dirname(reportPath),
    )
  }
  // ec stops itself at its --timeout, a little before the run's deadline;
  // one that hangs past it is stopped at the deadline.
  const ownTimeoutMs =
    options.timeoutMs === undefined
      ? undefined
      : Math.max(1_000, options.timeoutMs - Math.min(EC_STOP_MARGIN_MS, options.timeoutMs / 4))
  const args = ecValidateArgs({
    image: options.image,
    publicKey: path.resolve(options.publicKey),
    policy: policyPath,
    reportPath,
    timeoutMs: ownTimeoutMs,
  })
  const run = options.run ?? execRunner

  const stopAt = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs
  let attempts = 0
  for (;;) {
    attempts++
    // A report left from an earlier run must never stand in for this one's.
    await rm(reportPath, { force: true })
    const result = await run({
      file: options.ec,
      args,
      cwd: options.cwd,
      timeoutMs: stopAt === undefined ? undefined : Math.max(0, stopAt - Date.now()),
    })
    const { exitCode, stderr } = result
    const outcome: EcOutcome = result.timedOut
      ? {
          verdict: 'error',
          error: ecError(
            `ec did not finish by the run's deadline (${Math.round((options.timeoutMs ?? 0) / 1000)} s after it started, its own --timeout ${Math.ceil((ownTimeoutMs ?? 0) / 1000)} s) and was stopped`,
            result,
          ),
        }
      : await outcomeOf(result, reportPath)
    const validation: EcValidation = {
      ...outcome,
      reportPath,
      policyPath,
      exitCode,
      stderr,
      attempts,
    }
    const reason =
      validation.verdict === 'error'
        ? transientError(stderr)
        : transientViolation(validation.summary)
    if (!reason || attempts > 1 || result.timedOut) return validation
    core.warning(`ec met a registry or network error (${reason}); running it again`)
    await sleep(options.retryDelayMs ?? 10_000)
  }
}

/** How long before the run's deadline ec is asked to stop itself. */
const EC_STOP_MARGIN_MS = 10_000

async function outcomeOf(result: CommandResult, reportPath: string): Promise<EcOutcome> {
  let text: string
  try {
    text = await readFile(reportPath, 'utf8')
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT'
    const problem = missing ? 'wrote no report' : `report cannot be read (${errorMessage(err)})`
    return { verdict: 'error', error: ecError(problem, result) }
  }
  let report: EcReport
  try {
    report = parseEcReport(text, `ec's report ${reportPath}`)
  } catch (err) {
    return { verdict: 'error', error: ecError(errorMessage(err), result) }
  }
  if (report.components.length === 0) {
    // Nothing validated is no pass, whatever "success" says.
    return { verdict: 'error', error: ecError('report lists no image', result) }
  }
  return { verdict: report.success ? 'pass' : 'fail', report, summary: summarizeEcReport(report) }
}

/** "ec wrote no report (exit 1): <the last lines of its stderr>". */
function ecError(problem: string, result: CommandResult): string {
  const tail = result.stderr.trim().split('\n').slice(-10).join('\n')
  const said = tail ? `: ${tail}` : ', and printed nothing on stderr'
  const text = problem.startsWith('ec') ? problem : `ec ${problem}`
  return `${text} (exit ${result.exitCode})${said}`
}
