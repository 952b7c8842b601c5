/**
 * Running the external programs the action drives (kind, docker, sudo) over
 * one injectable runner: the action runs them with `@actions/exec`, tests
 * record the argv or put stand-ins on PATH.
 */
import { getExecOutput } from '@actions/exec'
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
}

export interface CommandResult {
  exitCode: number
  stdout: string
  stderr: string
}

/** Runs a command to its end; a non-zero exit is a result, not an error. */
export type CommandRunner = (command: Command) => Promise<CommandResult>

/** A runner over `@actions/exec`; `env` replaces the environment (tests put stand-ins on PATH). */
export function commandRunner(options: { env?: Record<string, string> } = {}): CommandRunner {
  return async ({ file, args, input, silent, cwd }) => {
    try {
      return await getExecOutput(file, args, {
        ignoreReturnCode: true,
        silent: silent ?? false,
        input: input === undefined ? undefined : Buffer.from(input),
        env: options.env,
        cwd,
      })
    } catch (err) {
      // @actions/exec throws only when the program cannot be started at all.
      throw new UserError(`${file} cannot be run: ${(err as Error).message}`)
    }
  }
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
