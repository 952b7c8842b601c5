import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { expectNoSecrets, filesUnder, watchCommandLines } from './secret-scan.js'
import { repoRoot } from './tools.js'

export interface ActionStep {
  code: number
  stdout: string
  stderr: string
  outputs: Record<string, string>
  /** What the step saved with core.saveState, handed to the post step. */
  state: Record<string, string>
  summary: string
  /** Contents of the files the `report`, `provenance` and `timings` outputs name, read before RUNNER_TEMP goes. */
  files: Record<string, string>
  /** From the step's start to its end. */
  wallMs: number
}

/**
 * Runs the committed bundle (dist/index.js) the way the Actions runner does:
 * inputs as INPUT_* variables, file commands for outputs, state and summary.
 * Pass the main step's `state` to run the post step.
 */
export async function runActionStep(
  inputs: Record<string, string>,
  options: {
    state?: Record<string, string>
    env?: Record<string, string>
    /** Called once the step runs (in a process group of its own): to stop it half-way, say. */
    whileRunning?: (step: RunningStep) => Promise<void>
    /**
     * Search every artefact for the secret inputs (default). The benchmark
     * turns it off: watching /proc costs CPU the step would otherwise have.
     */
    searchSecrets?: boolean
  } = {},
): Promise<ActionStep> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'oml-step-'))
  try {
    const files = {
      GITHUB_OUTPUT: path.join(dir, 'output'),
      GITHUB_STATE: path.join(dir, 'state'),
      GITHUB_STEP_SUMMARY: path.join(dir, 'summary'),
      GITHUB_ENV: path.join(dir, 'env'),
    }
    await Promise.all(Object.values(files).map((file) => writeFile(file, '')))
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dir,
      RUNNER_TEMP: dir,
      GITHUB_ACTIONS: 'true',
      GITHUB_RUN_ID: '1001',
      GITHUB_RUN_ATTEMPT: '1',
      ...files,
      ...options.env,
    }
    for (const [name, value] of Object.entries(inputs)) {
      env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value
    }
    for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value

    const commandLines = options.searchSecrets === false ? undefined : watchCommandLines()
    const started = performance.now()
    const { code, stdout, stderr } = await runBundle(env, options.whileRunning)
    const wallMs = performance.now() - started
    const outputs = parseFileCommand(await readFile(files.GITHUB_OUTPUT, 'utf8'))
    const state = parseFileCommand(await readFile(files.GITHUB_STATE, 'utf8'))
    // Every secret input, searched for in all the step left; `::add-mask::`
    // lines are how it is masked, read by the runner and never shown.
    const written = [dir, ...(env.RUNNER_TEMP === dir ? [] : [env.RUNNER_TEMP!])]
    if (commandLines) {
      expectNoSecrets(
        `the action step (${Object.keys(inputs).join(', ')})`,
        await secretInputs(inputs),
        [
          { name: 'stdout', text: stdout.replace(/^::add-mask::.*$/gm, '') },
          { name: 'stderr', text: stderr },
          ...Object.entries(outputs).map(([name, text]) => ({ name: `output ${name}`, text })),
          ...Object.entries(state).map(([name, text]) => ({ name: `state ${name}`, text })),
          ...(await Promise.all(written.map((d) => filesUnder(d).catch(() => [])))).flat(),
          ...(await commandLines.stop()),
        ],
      )
    }
    const named: Record<string, string> = {}
    for (const output of ['report', 'provenance', 'timings']) {
      const file = outputs[output]
      if (file) named[output] = await readFile(file, 'utf8')
    }
    return {
      code,
      stdout,
      stderr,
      outputs,
      files: named,
      state,
      summary: await readFile(files.GITHUB_STEP_SUMMARY, 'utf8'),
      wallMs,
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** The secrets among the inputs: passwords, and the signing key (a file's content, or the PEM). */
async function secretInputs(inputs: Record<string, string>): Promise<string[]> {
  const secrets = [inputs['registry-password'] ?? '', inputs['signing-key-password'] ?? '']
  const key = inputs['signing-key'] ?? ''
  secrets.push(key.includes('-----BEGIN') ? key : await readFile(key, 'utf8').catch(() => ''))
  return secrets.filter((s) => s.trim().length > 0)
}

/** A step's process while it runs. */
export interface RunningStep {
  pid: number
  /** What it has written so far, stdout then stderr. */
  output(): string
  ended: Promise<unknown>
}

/** Runs dist/index.js to its end; the exit code is 1 when a signal ended it. */
async function runBundle(
  env: Record<string, string>,
  whileRunning?: (step: RunningStep) => Promise<void>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'index.js')], {
    env,
    cwd: repoRoot,
    detached: whileRunning !== undefined,
  })
  let stdout = ''
  let stderr = ''
  // Decoded as a stream: a character cut between two chunks stays whole.
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const ended = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)))
  await whileRunning?.({ pid: child.pid!, output: () => stdout + stderr, ended })
  return { code: await ended, stdout, stderr }
}

/** Reads `name<<DELIMITER\nvalue\nDELIMITER` entries, as the runner does. */
export function parseFileCommand(text: string): Record<string, string> {
  const values: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<=]+)<<(.+)$/.exec(lines[i] ?? '')
    if (!match) continue
    const [, name = '', delimiter] = match
    const value: string[] = []
    for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i] ?? '')
    values[name] = value.join('\n')
  }
  return values
}
