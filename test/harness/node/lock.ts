/**
 * One node cluster at a time on a machine: it takes fixed host resources
 * (port 5000, the bridge, port 10250, the `registry.local` line in
 * /etc/hosts), and test files run in parallel. The lock is flock(1) on a
 * file, held by a child process for as long as the cluster runs: the kernel
 * drops it when that child ends, so a test process that dies never leaves a
 * stale lock behind.
 */
import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

/** Where the lock and the record of a running cluster (leftovers.ts) live. */
export const NODE_STATE_DIR = path.join(tmpdir(), 'oml-chains-node')

/** Waits for the machine's node lock; returns its release. */
export async function lockNode(deadline: number): Promise<() => Promise<void>> {
  mkdirSync(NODE_STATE_DIR, { recursive: true })
  const file = path.join(NODE_STATE_DIR, 'lock')
  // `flock FILE CMD` runs CMD once it holds the lock: CMD says so, then holds
  // it until its stdin closes (our release, or this process's end).
  const child = spawn('flock', [file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let output = ''
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        child.kill('SIGKILL')
        reject(
          new Error(
            `another node cluster holds ${file} (a test file running one, or a run that is stopping): gave up waiting`,
          ),
        )
      },
      Math.max(0, deadline - Date.now()),
    )
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('locked')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`flock cannot be run (${err.message}): install util-linux`))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`flock ${file} exited (${code}) before taking the lock: ${output.trim()}`))
    })
  })
  child.removeAllListeners('exit')
  // The lock holder must not keep the test process alive by itself.
  child.unref()
  return async () => {
    child.stdin.end()
    await exited
  }
}
