/**
 * The Docker engine the tests build and run the trainer image with: the
 * machine's own daemon when one answers, else `dockerd` (Debian's docker.io,
 * installed by scripts/test-tools.sh) started for the run by the global setup
 * and stopped at its end. Also loads the trainer base image, the root file
 * system test-tools.sh made from Debian packages, into it: Docker Hub, where
 * the Containerfile's own base lives, is out of reach here.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createReadStream, createWriteStream, readlinkSync } from 'node:fs'
import path from 'node:path'
import { repoRoot } from './tools.js'

/** The root file system test-tools.sh made; its file name carries its content key. */
const BASE_TAR = path.join(repoRoot, '.tools', 'images', 'trainer-base.tar')
/** Where a daemon started here logs (git-ignored). */
const DOCKERD_LOG = path.join(repoRoot, '.tools', 'dockerd.log')
const START_TIMEOUT_MS = 60_000

export interface DockerResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `docker ARGS`; never throws, the exit code is part of the result. */
export function docker(args: string[], input?: NodeJS.ReadableStream): Promise<DockerResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'docker',
      args,
      { maxBuffer: 64 * 1024 * 1024, timeout: 15 * 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    )
    if (input) input.pipe(child.stdin!)
  })
}

/** `docker ARGS`, its stdout; a failure throws with its stderr. */
export async function dockerChecked(args: string[]): Promise<string> {
  const result = await docker(args)
  if (result.code !== 0) {
    throw new Error(`docker ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}`)
  }
  return result.stdout
}

async function daemonAnswers(): Promise<boolean> {
  return (await docker(['version', '--format', '{{.Server.Version}}'])).code === 0
}

/**
 * Makes sure a Docker daemon answers. Returns a stop function when it started
 * one (the caller stops what it started), undefined when one was running.
 */
export async function ensureDockerDaemon(): Promise<(() => Promise<void>) | undefined> {
  if (await daemonAnswers()) return undefined
  if (process.getuid?.() !== 0) {
    throw new Error(
      'no Docker daemon answers and only root can start one: start dockerd (sudo dockerd &), or run the tests as root',
    )
  }
  const log = createWriteStream(DOCKERD_LOG, { flags: 'a' })
  let child: ChildProcess
  try {
    child = spawn('dockerd', [], { stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    throw new Error(`dockerd cannot be started (${String(err)}): run \`npm run test-tools\``, {
      cause: err,
    })
  }
  await new Promise<void>((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `dockerd did not serve its API in ${START_TIMEOUT_MS} ms:\n${seen.slice(-2000)}`,
          ),
        ),
      START_TIMEOUT_MS,
    )
    // dockerd says when its API listens: the wait watches for that line.
    const onData = (chunk: Buffer) => {
      seen += chunk.toString()
      log.write(chunk)
      if (/API listen on/.test(seen)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`dockerd cannot be started (${err.message}): run \`npm run test-tools\``))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`dockerd exited (${code}) before serving its API:\n${seen.slice(-2000)}`))
    })
  })
  child.removeAllListeners('exit')
  return async () => {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGTERM')
    await exited
    log.end()
  }
}

/** The tag of the trainer base image: named after the root file system's content key. */
export function trainerBaseImage(): string {
  let target: string
  try {
    target = readlinkSync(BASE_TAR)
  } catch {
    throw new Error(
      `the trainer base image's root file system is missing (${BASE_TAR}): run \`npm run test-tools\``,
    )
  }
  const key = /trainer-base-([0-9a-f]+)\.tar$/.exec(target)?.[1]
  if (!key) throw new Error(`${BASE_TAR} links to ${target}, not a trainer-base-<key>.tar`)
  return `oml-chains-test/trainer-base:${key}`
}

/** Imports the trainer base image into the daemon unless it holds that tag already. */
export async function loadTrainerBaseImage(): Promise<string> {
  const tag = trainerBaseImage()
  if ((await docker(['image', 'inspect', '--format', '{{.Id}}', tag])).code === 0) return tag
  const result = await docker(['image', 'import', '-', tag], createReadStream(BASE_TAR))
  if (result.code !== 0) throw new Error(`docker import of ${BASE_TAR} failed: ${result.stderr}`)
  return tag
}
