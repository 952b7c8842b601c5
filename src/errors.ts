/**
 * An error the user can act on: its message is shown as it is, on one line,
 * without a stack trace. Anything else reaching the top is a bug.
 */
export class UserError extends Error {
  override name = 'UserError'
}

/**
 * A bad value for one action input (`dataset`) or CLI flag (`--key`): names it
 * and says what is accepted.
 */
export class InputError extends UserError {
  override name = 'InputError'
  constructor(
    readonly input: string,
    problem: string,
  ) {
    super(input.startsWith('-') ? `${input}: ${problem}` : `input '${input}': ${problem}`)
  }
}

/** The message of anything thrown, for a one-line report. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
