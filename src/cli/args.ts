import { parseArgs, type ParseArgsConfig } from 'node:util'
import { InputError, UserError } from '../errors.js'

/** A subcommand of `oml-chains`. */
export interface Command {
  name: string
  usage: string
  /** Resolves to the exit code, or nothing for 0; throws to exit 1 (2 for a UsageError). */
  run(argv: string[]): Promise<number | void>
}

type Options = NonNullable<ParseArgsConfig['options']>

/** Shows a subcommand's help instead of running it. */
export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super(text)
  }
}

/** The command line itself is wrong (a flag, a missing value): exit 2, nothing was done. */
export class UsageError extends UserError {
  override name = 'UsageError'
}

/**
 * Parses a subcommand's flags; unknown flags and stray arguments are errors that
 * name the flag, and `--help` shows the usage.
 */
export function parseFlags<O extends Options>(argv: string[], options: O, usage: string) {
  if (argv.includes('--help') || argv.includes('-h')) throw new HelpRequested(usage)
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UserError(`${flagProblem(err)}\n\n${usage}`)
  }
}

/**
 * Like parseFlags, for commands whose usage is too long to repeat: a bad flag
 * is a one-line UsageError that points at `--help`.
 */
export function parseUsageFlags<O extends Options>(
  argv: string[],
  options: O,
  usage: string,
  command: string,
) {
  if (argv.includes('--help') || argv.includes('-h')) throw new HelpRequested(usage)
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new UsageError(`${flagProblem(err)} (see 'oml-chains ${command} --help')`)
  }
}

/** node's parseArgs message, without its advice on values that start with a dash. */
function flagProblem(err: unknown): string {
  return err instanceof Error ? err.message.replace(/\.?\s*To specify.*$/s, '') : String(err)
}

/** The value of a required flag, or an error naming it. */
export function required(value: string | undefined, flag: string, what: string): string {
  if (!value) throw new InputError(`--${flag}`, `is required (${what})`)
  return value
}
