import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs'
import { stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { errorMessage, InputError, UserError } from '../errors.js'
import { INPUT_NAMES, type InputName, type InputSource } from '../inputs.js'
import type { CreatedResources } from '../phases/cluster.js'
import {
  renderSummary,
  reportOutputs,
  violationAnnotations,
  type RunReport,
  type RunVerdict,
} from '../phases/report.js'
import { leftBehind } from '../phases/cleanup.js'
import { cleanUpAfterRun, runFlow } from '../run.js'
import { maskSecret } from '../secrets.js'
import { parseUsageFlags, UsageError, type Command } from './args.js'
import { watchInterrupts } from './interrupt.js'
import { routeProgressToStderr } from './progress.js'
import { flagOf, inputValue, refuseSecretFlags, RUN_FLAGS, secretEnvOf } from './run-flags.js'

const SUMMARY_FLAG = 'summary'

function usageText(): string {
  const rows: [string, string][] = INPUT_NAMES.map((input) => {
    const spec = RUN_FLAGS[input]
    if (spec.kind === 'secret') {
      return [`--${flagOf(input)} FILE`, `${spec.help}, from FILE or $${secretEnvOf(input)}`]
    }
    return [`--${flagOf(input)}${spec.value ? ` ${spec.value}` : ''}`, spec.help]
  })
  rows.push([`--${SUMMARY_FLAG} FILE`, 'write the job summary (Markdown) to FILE'])
  rows.push(['--help', 'show this help'])
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2
  return `Usage: oml-chains run --dataset REF [options]

The action's main job from a terminal: brings up a kind cluster (or uses an
existing one), installs Tekton Pipelines and Chains, trains the model, waits
for Chains to sign and attest it, and checks it with Enterprise Contract; then
removes what it created, unless --keep-cluster. Needs Docker for kind; kind and
ec are downloaded into $RUNNER_TOOL_CACHE (default ~/.cache/oml-chains/tool-cache).

Progress goes to stderr; stdout gets one JSON document: verdict, digest, image,
violations, warnings, report, publicKey, datasetDigest, provenance, pipelinerun,
timings (null when the run did not get that far), and error with verdict error.
Exit status: 0 for pass (or fail with --fail-on-violation false), 1 for fail or
error, 2 for a wrong command line, 130 (SIGINT) or 143 (SIGTERM) when stopped,
after removing what the run created so far. Secrets are never flag values: they come
from a file (one trailing newline is ignored) or from the environment.

Options (the inputs of action.yml, and --summary):
${rows.map(([flag, help]) => `  ${flag.padEnd(width)}${help}`).join('\n')}`
}

/** What `oml-chains run` prints on stdout: the action's outputs, camelCased, as JSON. */
export interface RunResult {
  verdict: RunVerdict
  digest: string | null
  image: string | null
  violations: number | null
  warnings: number | null
  report: string | null
  publicKey: string | null
  datasetDigest: string | null
  provenance: string | null
  pipelinerun: string | null
  /** The timings file (the `timings` output). */
  timings: string | null
  /** Why there is no verdict; only with verdict error. */
  error?: string
}

export const run: Command = {
  name: 'run',
  usage: usageText(),
  async run(argv) {
    const { source, summaryFile } = await commandLine(argv)

    let created: CreatedResources = {}
    let keepCluster: boolean | undefined
    const restoreStdout = routeProgressToStderr()
    // One cleanup, whether the run ends or a signal stops it.
    let cleaning: Promise<void> | undefined
    const cleanUp = () => (cleaning ??= cleanUpAfterRun(created, keepCluster ?? false))
    const interrupts = watchInterrupts({
      cleanUp,
      cleanupStarted: () => cleaning !== undefined,
      leftBehind: () => leftBehind(created),
      finish: (signal) => {
        restoreStdout()
        const result = { ...runResult({ verdict: 'error', failOnViolation: true }) }
        result.error = `interrupted by ${signal}`
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
      },
      log: (line) => process.stderr.write(`${line}\n`),
      exit: (code) => process.exit(code),
    })
    let report: RunReport
    try {
      report = await runFlow(source, {
        planned: (plan) => {
          keepCluster = plan.keepCluster
          useLocalRunnerDirs() // only now: a wrong command line leaves nothing behind
        },
        // Kept in memory: the cleanup runs in this process, not in a post step.
        // After a signal nothing new is created: the phase about to do it fails.
        record: (resources) => {
          interrupts.throwIfInterrupted()
          created = resources
        },
      })
      // A stopped run ends in the signal handler, once its cleanup is done.
      if (interrupts.signal) return await interrupts.handled.then(() => 1)
      // Without a Plan, nothing ran: the inputs were wrong.
      if (keepCluster === undefined) throw new UsageError(flagWords(report.error ?? ''))
      await cleanUp()
      if (interrupts.signal) return await interrupts.handled.then(() => 1)
    } finally {
      if (!interrupts.signal) {
        interrupts.dispose()
        restoreStdout()
      }
    }

    if (summaryFile) await writeSummary(summaryFile, report)
    for (const { title, message } of violationAnnotations(report)) {
      process.stderr.write(`violation: ${title}: ${message}\n`)
    }
    const result = runResult(report)
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
    return finalWord(report, result)
  },
}

/** The flags as an InputSource for readPlan; a wrong command line is a UsageError. */
async function commandLine(
  argv: string[],
): Promise<{ source: InputSource; summaryFile: string | undefined }> {
  const usage = usageText()
  refuseSecretFlags(argv)
  const options = Object.fromEntries([
    ...INPUT_NAMES.map((input) => {
      const kind = RUN_FLAGS[input].kind
      const type = kind === 'boolean' ? 'boolean' : 'string'
      return [flagOf(input), { type, multiple: kind === 'list' }] as const
    }),
    [SUMMARY_FLAG, { type: 'string', multiple: false }] as const,
  ])
  const flags = parseUsageFlags(argv, options, usage, 'run') as Record<
    string,
    string | string[] | boolean | undefined
  >
  try {
    const values = new Map<InputName, string>()
    for (const input of INPUT_NAMES) {
      const value = await inputValue(input, flags[flagOf(input)])
      if (value) values.set(input, value)
    }
    const summaryFile = flags[SUMMARY_FLAG] as string | undefined
    if (summaryFile) await checkWritableDir(summaryFile)
    const source: InputSource = {
      get: (name) => values.get(name) ?? '',
      env: process.env,
      readFile: (file) => readFileSync(file, 'utf8'),
      exists: (file) => existsSync(file),
      homedir: os.homedir(),
      mask: maskSecret,
    }
    return { source, summaryFile }
  } catch (err) {
    if (err instanceof UserError) throw new UsageError(errorMessage(err))
    throw err
  }
}

async function checkWritableDir(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file))
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  )
  if (!isDir) throw new InputError(`--${SUMMARY_FLAG}`, `directory ${dir} does not exist`)
}

/**
 * tool-cache downloads into $RUNNER_TEMP and caches in $RUNNER_TOOL_CACHE, both
 * set by the GitHub runner. Outside it: a per-user cache (kind and ec are
 * downloaded once) and a fresh temp directory, which also holds the run's
 * files (provenance, ec report) and is left for the user to read.
 */
function useLocalRunnerDirs(): void {
  if (!process.env.RUNNER_TOOL_CACHE) {
    const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
    process.env.RUNNER_TOOL_CACHE = path.join(cache, 'oml-chains', 'tool-cache')
    mkdirSync(process.env.RUNNER_TOOL_CACHE, { recursive: true })
  }
  if (!process.env.RUNNER_TEMP) {
    process.env.RUNNER_TEMP = mkdtempSync(path.join(os.tmpdir(), 'oml-chains-run-'))
  }
}

async function writeSummary(file: string, report: RunReport): Promise<void> {
  try {
    await writeFile(file, renderSummary(report))
    process.stderr.write(`summary written to ${file}\n`)
  } catch (err) {
    process.stderr.write(`warning: summary not written to ${file}: ${errorMessage(err)}\n`)
  }
}

function runResult(report: RunReport): RunResult {
  const outputs = reportOutputs(report)
  const count = (value: string | undefined) => (value === undefined ? null : Number(value))
  const result: RunResult = {
    verdict: report.verdict,
    digest: outputs.digest ?? null,
    image: outputs.image ?? null,
    violations: count(outputs.violations),
    warnings: count(outputs.warnings),
    report: outputs.report ?? null,
    publicKey: outputs['public-key'] ?? null,
    datasetDigest: outputs['dataset-digest'] ?? null,
    provenance: outputs.provenance ?? null,
    pipelinerun: outputs.pipelinerun ?? null,
    timings: outputs.timings ?? null,
  }
  if (report.verdict === 'error') {
    result.error = flagWords(report.error ?? 'the run ended without a verdict')
  }
  return result
}

/** The last line on stderr and the exit status, as the action's step ends. */
function finalWord(report: RunReport, result: RunResult): number {
  if (report.verdict === 'error') {
    process.stderr.write(`oml-chains run: error: ${result.error ?? ''}\n`)
    return 1
  }
  if (report.verdict === 'fail') {
    const n = result.violations ?? 0
    const what = `the model does not meet the policy: ${n} violation${n === 1 ? '' : 's'}`
    process.stderr.write(`oml-chains run: ${what}\n`)
    return report.failOnViolation ? 1 : 0
  }
  process.stderr.write('oml-chains run: verdict pass\n')
  return 0
}

/** readPlan names inputs (`input 'dataset'`); on the command line they are flags (`--dataset`). */
function flagWords(message: string): string {
  return message.replace(/input '([a-z-]+)'/g, (words, input: string) =>
    (INPUT_NAMES as readonly string[]).includes(input) ? `--${flagOf(input as InputName)}` : words,
  )
}
