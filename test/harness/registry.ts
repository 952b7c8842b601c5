import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as delay } from 'node:timers/promises'
import { toolPath } from './tools.js'

export interface TestRegistry {
  /** `127.0.0.1:PORT`: use with an `insecure` predicate (plain HTTP). */
  host: string
  /** Everything the registry logged so far (for failure messages). */
  log(): string
  /** The registry's process id. */
  pid: number
  stop(): Promise<void>
}

const startTimeoutMs = 20_000

/**
 * Starts go-containerregistry's in-memory `registry` on 127.0.0.1 (it listens
 * on `localhost:PORT`). `--port 0` lets the OS pick a free port (no race with
 * a port probed beforehand); the port is read from its "serving on port N"
 * log line, then `GET /v2/` is polled until it answers. A fixed `port` is for
 * the node cluster's `registry.local:5000`.
 */
export async function startRegistry(options: { port?: number } = {}): Promise<TestRegistry> {
  const child = spawn(toolPath('registry'), ['--port', String(options.port ?? 0)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))

  const stop = (): Promise<void> => stopProcess(child)
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`registry did not report its port within ${startTimeoutMs} ms:\n${output}`),
          ),
        startTimeoutMs,
      )
      const check = (): void => {
        const match = /serving on port (\d+)/.exec(output)
        if (match) {
          clearTimeout(timer)
          resolve(Number(match[1]))
        }
      }
      child.stdout.on('data', check)
      child.stderr.on('data', check)
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`registry exited (${signal ?? code}) before serving:\n${output}`))
      })
    })
    const host = `127.0.0.1:${port}`
    await waitForV2(`http://${host}/v2/`, () => output)
    return { host, log: () => output, pid: child.pid!, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Polls `GET /v2/` with short, growing pauses until it answers 200; bounded. */
export async function waitForV2(url: string, log: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + startTimeoutMs
  let lastProblem = ''
  for (let pause = 10; Date.now() < deadline; pause = Math.min(pause * 2, 200)) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) })
      await response.body?.cancel()
      if (response.status === 200) return
      lastProblem = `HTTP ${response.status}`
    } catch (err) {
      lastProblem = String((err as Error).cause ?? err)
    }
    await delay(pause)
  }
  throw new Error(
    `${url} did not answer within ${startTimeoutMs} ms (last: ${lastProblem})\n${log()}`,
  )
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}
