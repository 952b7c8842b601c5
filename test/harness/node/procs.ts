/**
 * The node's processes: each one writes its output straight into its own log
 * file (the child holds the file, so nothing is lost when the test process is
 * busy), waits watch that file or the process's exit, and failures quote the
 * file's last lines. The logs stay in .tools/logs/node/ after a run, for a
 * look at what happened; the next run starts them afresh.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, readSync, fstatSync, watch } from 'node:fs'
import path from 'node:path'
import { pollUntil } from '../poll-process.js'
import { repoRoot } from '../tools.js'

export const NODE_LOG_DIR = path.join(repoRoot, '.tools', 'logs', 'node')

const TAIL_LINES = 40
const TAIL_BYTES = 64 * 1024

export interface NodeProcess {
  name: string
  pid: number
  logFile: string
  child: ChildProcess
  /** Resolves with how it ended (`exited (1)`); never rejects. */
  exited: Promise<string>
  running(): boolean
  /** The last lines of its log, headed by its name: for error messages. */
  tail(lines?: number): string
  /** Waits for a log line matching `pattern`; fails when the process ends first, or at the deadline. */
  waitForLog(pattern: RegExp, what: string, deadline: number): Promise<string>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>
}

/** Children still running: killed when the test process exits, whatever the tests did. */
const live = new Set<ChildProcess>()
let exitHookInstalled = false
function track(child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL')
    })
  }
}

/** The last `lines` lines of a file (its last 64 KiB at most). */
export function fileTail(file: string, lines = TAIL_LINES): string {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return `(no log at ${file})`
  }
  try {
    const size = fstatSync(fd).size
    const length = Math.min(size, TAIL_BYTES)
    const buffer = Buffer.alloc(length)
    readSync(fd, buffer, 0, length, size - length)
    return buffer.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } finally {
    closeSync(fd)
  }
}

/** Starts `file args`, its stdout and stderr into NODE_LOG_DIR/<name>.log. */
export function startProcess(
  name: string,
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): NodeProcess {
  mkdirSync(NODE_LOG_DIR, { recursive: true })
  const logFile = path.join(NODE_LOG_DIR, `${name}.log`)
  const fd = openSync(logFile, 'w')
  let child: ChildProcess
  try {
    child = spawn(file, args, { stdio: ['ignore', fd, fd], env: options.env, cwd: options.cwd })
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(fd)
  }
  track(child)
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(`failed to start: ${err.message}`))
    child.once('exit', (code, signal) => resolve(`exited (${signal ?? code})`))
  })
  const running = (): boolean =>
    child.pid !== undefined && child.exitCode === null && child.signalCode === null
  const tail = (lines = TAIL_LINES): string =>
    `--- last lines of ${name} (${logFile}) ---\n${fileTail(logFile, lines)}`

  return {
    name,
    pid: child.pid ?? -1,
    logFile,
    child,
    exited,
    running,
    tail,
    waitForLog: (pattern, what, deadline) =>
      waitForLogLine(logFile, pattern, exited, deadline).catch((err: Error) => {
        throw new Error(`${name}: ${what}: ${err.message}\n${tail()}`)
      }),
    async stop(graceMs = 10_000) {
      if (!running()) return
      child.kill('SIGTERM')
      // A graceful shutdown is quick here; a hung one must not hang the suite.
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * Resolves with the first line of `file` that matches `pattern`, reading what
 * the file has and then what is appended to it as it is written (inotify).
 */
function waitForLogLine(
  file: string,
  pattern: RegExp,
  exited: Promise<string>,
  deadline: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let offset = 0
    let partial = ''
    let done = false
    const finish = (err: Error | undefined, line?: string): void => {
      if (done) return
      done = true
      watcher.close()
      clearTimeout(timer)
      if (err) reject(err)
      else resolve(line!)
    }
    const scan = (): void => {
      if (done) return
      let text: string
      try {
        const all = readFileSync(file)
        text = all.subarray(offset).toString('utf8')
        offset = all.length
      } catch (err) {
        finish(err as Error)
        return
      }
      const lines = (partial + text).split('\n')
      partial = lines.pop() ?? ''
      const found = lines.find((line) => pattern.test(line))
      if (found !== undefined) finish(undefined, found)
    }
    const watcher = watch(file, () => scan())
    const timer = setTimeout(
      () => finish(new Error(`no log line matching ${pattern} in time`)),
      Math.max(0, deadline - Date.now()),
    )
    void exited.then((how) => {
      // Its last words may hold the line.
      scan()
      finish(new Error(`${how} before a log line matching ${pattern}`))
    })
    scan()
  })
}

/** Polls `probe` until it answers true (see pollUntil), failing early when `proc` ends. */
export function waitUntil(
  proc: NodeProcess,
  what: string,
  deadline: number,
  probe: () => Promise<string | true>,
): Promise<void> {
  return pollUntil(
    { name: proc.name, exited: proc.exited, tail: () => proc.tail() },
    what,
    deadline,
    probe,
  )
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs a command to its end; a non-zero exit is a result, not an error. */
export function run(
  file: string,
  args: string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 120_000 },
      (err, stdout, stderr) => {
        if (err?.killed) {
          resolve({
            code: -1,
            stdout,
            stderr: `${stderr}\n(killed after ${options.timeoutMs ?? 120_000} ms)`,
          })
          return
        }
        if (err && typeof err.code !== 'number') {
          reject(new Error(`${file} cannot be run: ${err.message}`))
          return
        }
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr })
      },
    )
    if (options.input !== undefined) child.stdin!.end(options.input)
  })
}

/** Runs a command; a non-zero exit throws with the command line and its stderr. */
export async function runChecked(
  file: string,
  args: string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<string> {
  const result = await run(file, args, options)
  if (result.code !== 0) {
    const output = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-10).join('\n')
    throw new Error(`\`${[file, ...args].join(' ')}\` failed (exit ${result.code}): ${output}`)
  }
  return result.stdout
}
