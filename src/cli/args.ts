import { parseArgs, type ParseArgsConfig } from 'node:util'
import { InputError, UserError } from '../errors.js'

/** A subcommand of `oml-chains`. */
export interface Command {
  name: string
  summary: string
  usage: string
  run(argv: string[]): Promise<void>
}

type Options = NonNullable<ParseArgsConfig['options']>

/** Shows a subcommand's help instead of running it. */
export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super(text)
  }
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
    const message =
      err instanceof Error ? err.message.replace(/\.?\s*To specify.*$/s, '') : String(err)
    throw new UserError(`${message}\n\n${usage}`)
  }
}

/** The value of a required flag, or an error naming it. */
export function required(value: string | undefined, flag: string, what: string): string {
  if (!value) throw new InputError(`--${flag}`, `is required (${what})`)
  return value
}
