import { setTimeout as delay } from 'node:timers/promises'

/** What polling needs of a process the harness started. */
export interface PolledProcess {
  name: string
  /** Resolves with how it ended (`exited (1)`); never rejects. */
  exited: Promise<string>
  /** Its last lines, headed by its name: for error messages. */
  tail(): string
}

/**
 * Polls `probe` with short, growing pauses until it answers true (for what
 * only answers on request: a health endpoint). Fails early when `proc` ends
 * (the error made by `exitError`, for a caller that tells causes apart), and
 * at the deadline with the last answer and the process's last lines.
 */
export async function pollUntil(
  proc: PolledProcess,
  what: string,
  deadline: number,
  probe: () => Promise<string | true>,
  exitError: (message: string) => Error = (message) => new Error(message),
): Promise<void> {
  let exit: string | undefined
  void proc.exited.then((how) => (exit = how))
  let last: string
  for (let pause = 20; ; pause = Math.min(pause * 2, 500)) {
    try {
      const answer = await probe()
      if (answer === true) return
      last = answer
    } catch (err) {
      last = String((err as Error).cause ?? (err as Error).message ?? err)
    }
    if (exit !== undefined) throw exitError(`${proc.name} ${exit} before ${what}\n${proc.tail()}`)
    if (Date.now() >= deadline) {
      throw new Error(
        `${proc.name}: ${what} did not happen in time (last: ${last})\n${proc.tail()}`,
      )
    }
    await delay(pause)
  }
}
