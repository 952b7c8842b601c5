/**
 * Ctrl-C (SIGINT) and `kill` (SIGTERM) during `oml-chains run`. The command
 * cleans up in its own process, so a stopped run must do it before it goes:
 * from the first signal on nothing new is created, the programs the run
 * started (kind, docker) are stopped, what the run created so far is removed
 * (or kept, with --keep-cluster), and the command exits 128 + the signal's
 * number, as shells expect. A second signal exits at once and names what is
 * left, with the command that removes each thing.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import { UserError } from '../errors.js'

export const INTERRUPT_SIGNALS = ['SIGINT', 'SIGTERM'] as const
export type InterruptSignal = (typeof INTERRUPT_SIGNALS)[number]

const EXIT_CODES: Record<InterruptSignal, number> = { SIGINT: 130, SIGTERM: 143 }

/** Thrown where the run would create something after a signal came. */
export class Interrupted extends UserError {
  override name = 'Interrupted'
  constructor(readonly signal: InterruptSignal) {
    super(`interrupted by ${signal}`)
  }
}

export interface InterruptDeps {
  /** Removes what the run created, or says what keep-cluster keeps. Never throws. */
  cleanUp: () => Promise<void>
  /** True once the run's own cleanup is under way: its commands are left to finish. */
  cleanupStarted: () => boolean
  /** What stays when the cleanup does not finish, with how to remove each. */
  leftBehind: () => string[]
  /** Writes the command's result for a stopped run (stdout's JSON). */
  finish: (signal: InterruptSignal) => void
  /** Progress and the last words (stderr). */
  log: (line: string) => void
  exit: (code: number) => void
}

export interface InterruptWatch {
  /** The first signal that came, if any. */
  readonly signal: InterruptSignal | undefined
  /** Throws Interrupted once a signal has come. */
  throwIfInterrupted(): void
  /** Settles only if the handler is done without exiting (tests); never in a real run. */
  readonly handled: Promise<void>
  /** Stops listening: the run is over. */
  dispose(): void
}

export function watchInterrupts(deps: InterruptDeps): InterruptWatch {
  let signal: InterruptSignal | undefined
  let settle: () => void = () => undefined
  const handled = new Promise<void>((resolve) => (settle = resolve))

  const onSignal = (received: InterruptSignal): void => {
    if (signal) {
      const left = deps.leftBehind()
      deps.log(
        `oml-chains run: ${received} again: exiting now, the cleanup unfinished` +
          (left.length ? `; left behind: ${left.join('; ')}` : '; nothing was left behind'),
      )
      deps.exit(EXIT_CODES[received])
      return
    }
    signal = received
    deps.log(
      `oml-chains run: ${received}: stopping the run and removing what it created (${received} again exits at once)`,
    )
    void (async () => {
      if (!deps.cleanupStarted()) await stopChildProcesses()
      await deps.cleanUp()
      deps.finish(received)
      deps.log(`oml-chains run: interrupted by ${received}`)
      deps.exit(EXIT_CODES[received])
      settle()
    })()
  }

  const listeners = INTERRUPT_SIGNALS.map((name) => {
    const listener = () => onSignal(name)
    process.on(name, listener)
    return [name, listener] as const
  })
  return {
    get signal() {
      return signal
    },
    throwIfInterrupted() {
      if (signal) throw new Interrupted(signal)
    },
    handled,
    dispose() {
      for (const [name, listener] of listeners) process.off(name, listener)
    },
  }
}

/** How long the stopped programs get to exit before they are killed. */
const STOP_GRACE_MS = 5_000

/**
 * Stops every process below this one (kind, docker and theirs) with SIGTERM,
 * and kills what is still there after STOP_GRACE_MS. A Ctrl-C in a terminal
 * reaches them already; a `kill` of this process alone does not.
 */
async function stopChildProcesses(): Promise<void> {
  const stopped = descendants(process.pid)
  for (const pid of stopped) signalProcess(pid, 'SIGTERM')
  const deadline = Date.now() + STOP_GRACE_MS
  for (let pause = 10; stopped.some(isRunning); pause = Math.min(pause * 2, 200)) {
    if (Date.now() >= deadline) {
      for (const pid of stopped.filter(isRunning)) signalProcess(pid, 'SIGKILL')
      return
    }
    await delay(pause)
  }
}

/**
 * The processes below `root`, parents before children, from /proc. Where
 * there is no /proc there is no list, and only a terminal's Ctrl-C (which
 * reaches the whole process group) stops them.
 */
export function descendants(root: number): number[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  const children = new Map<number, number[]>()
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const parent = parentOf(entry)
    if (parent === undefined) continue
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)])
  }
  const found: number[] = []
  for (let queue = [root]; queue.length > 0;) {
    const next = children.get(queue.shift()!) ?? []
    found.push(...next)
    queue.push(...next)
  }
  return found
}

/** The parent pid in /proc/PID/stat; the name before it is in parentheses and may hold spaces. */
function parentOf(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const [, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ppid === undefined ? undefined : Number(ppid)
  } catch {
    return undefined // gone meanwhile
  }
}

function isRunning(pid: number): boolean {
  try {
    // A zombie has exited; its parent (this process, via libuv) reaps it.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // exited meanwhile
  }
}
