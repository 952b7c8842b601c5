/**
 * Running the external programs the action drives (kind, docker, sudo, ec)
 * over one injectable runner: tests record the argv or put stand-ins on PATH.
 * The runner echoes each command line and its output to the log as
 * @actions/exec does (`[command]...`), and stops a command that outlives
 * its `timeoutMs`.
 */
import { spawn } from 'node:child_process'
import { constants } from 'node:os'
import { UserError } from '../errors.js'

/** One command to run. Secrets go in `input` (stdin), never in `args`. */
export interface Command {
  file: string
  args: string[]
  /** Written to the command's stdin. */
  input?: string
  /** Keeps the command line and its output out of the log (noisy or secret output). */
  silent?: boolean
  /** Working directory (default the step's). */
  cwd?: string
  /** Stopped after this long: SIGTERM, then SIGKILL if it is still there STOP_GRACE_MS later. */
  timeoutMs?: number
}

export interface CommandResult {
  exitCode: number
  stdout: string
  stderr: string
  /** Set when the command was stopped at its `timeoutMs`. */
  timedOut?: boolean
}

/** Runs a command to its end; a non-zero exit is a result, not an error. */
export type CommandRunner = (command: Command) => Promise<CommandResult>

/** How long a command stopped at its timeout has to exit before it is killed. */
const STOP_GRACE_MS = 5_000

/** A runner of real processes; `env` replaces the environment (tests put stand-ins on PATH). */
export function commandRunner(options: { env?: Record<string, string> } = {}): CommandRunner {
  return ({ file, args, input, silent, cwd, timeoutMs }) =>
    new Promise((resolve, reject) => {
      if (!silent) process.stdout.write(`[command]${[file, ...args].join(' ')}\n`)
      const child = spawn(file, args, { cwd, env: options.env ?? process.env })
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      child.stdout.on('data', (chunk: Buffer) => {
        stdout.push(chunk)
        if (!silent) process.stdout.write(chunk)
      })
      // Both streams go to the step's log, in the order they come (as @actions/exec does).
      child.stderr.on('data', (chunk: Buffer) => {
        stderr.push(chunk)
        if (!silent) process.stdout.write(chunk)
      })
      // A program that exits without reading all of its input is not an error here.
      child.stdin.on('error', () => undefined)
      child.stdin.end(input)

      let timedOut = false
      let kill: NodeJS.Timeout | undefined
      const stop =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true
              child.kill('SIGTERM')
              kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
            }, timeoutMs)
      child.on('error', (err) => {
        clearTimeout(stop)
        clearTimeout(kill)
        reject(new UserError(`${file} cannot be run: ${err.message}`))
      })
      child.on('close', (code, signal) => {
        clearTimeout(stop)
        clearTimeout(kill)
        const result: CommandResult = {
          // As a shell reports it: 128 + the signal's number for a killed program.
          exitCode: code ?? 128 + (signal ? constants.signals[signal] : 0),
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        }
        if (timedOut) result.timedOut = true
        resolve(result)
      })
    })
}

export const execRunner: CommandRunner = commandRunner()

/** A command that exited non-zero: names the command line and the last of its stderr. */
export class CommandError extends UserError {
  override name = 'CommandError'
  constructor(
    readonly command: Command,
    readonly result: CommandResult,
    tailLines = 5,
  ) {
    super(
      `\`${[command.file, ...command.args].join(' ')}\` failed (exit ${result.exitCode})${tailOf(result, tailLines)}`,
    )
  }
}

function tailOf(result: CommandResult, lines: number): string {
  const text = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-lines).join('\n')
  return text ? `: ${text}` : ''
}

/** Runs `command` and returns its stdout; throws CommandError on a non-zero exit. */
export async function runChecked(run: CommandRunner, command: Command): Promise<string> {
  const result = await run(command)
  if (result.exitCode !== 0) throw new CommandError(command, result)
  return result.stdout
}
