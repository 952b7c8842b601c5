/**
 * Runs stopped half-way. `oml-chains run` from the committed bundle is
 * stopped while the real kind creates a cluster (the node image is a
 * stand-in that never answers: test/harness/kind-node.ts) and the trainer image
 * is built in the real Docker engine; then the test looks at the machine. The
 * action's main step is killed the same way, and its post step cleans up.
 * Every run goes through the internet stand-in: none may ask it for anything.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunResult } from '../src/cli/run.js'
import { stageBuildContext, trainerBuildContext } from '../src/phases/trainer-build.js'
import { Docker } from '../src/tools/docker.js'
import { runActionStep } from './harness/action.js'
import { docker, trainerBaseImage } from './harness/docker.js'
import { startInternetStandIn, type InternetStandIn } from './harness/internet.js'
import { kindWithStandInNode, type KindWithStandInNode } from './harness/kind-node.js'
import { expectNoSecrets, filesUnder, watchCommandLines } from './harness/secret-scan.js'
import { repoRoot } from './harness/tools.js'
import { recordFault } from './harness/faults/record.js'

const cliBundle = path.join(repoRoot, 'dist', 'cli', 'index.js')
/** The dataset is looked up in the cluster's registry: never reached here. */
const DATASET = 'registry.local:5000/datasets/iris:1'
/** A signing key of the user's: a secret the search below looks for everywhere. */
const KEY_FILE = path.join(repoRoot, 'test/fixtures/cosign-keys/chains-testdata-cosign.key')
const KEY_PASSWORD = 'p'

let work: string
let kind: KindWithStandInNode
let internet: InternetStandIn
let hostsBefore: string
const clusters: string[] = []
let count = 0

/** A tag of the test's own on the trainer image the runs build. */
const LAYERS_TAG = `oml-chains-test/trainer-layers:${process.pid}`

/**
 * Builds the trainer image once, as the runs will, under LAYERS_TAG: the
 * runs' builds then come from Docker's layer cache, and removing a run's tag
 * leaves the layers to the next run. Built afresh in each run, the image took
 * over 30 s on a slow machine, too long for a run to get half-way before its
 * timeout.
 */
async function cacheTrainerLayers(): Promise<void> {
  const context = await trainerBuildContext(repoRoot, trainerBaseImage())
  const dir = await stageBuildContext(repoRoot, context, work)
  await new Docker().buildImage({
    context: dir,
    file: path.join(dir, 'Containerfile'),
    tag: LAYERS_TAG,
    buildArgs: context.buildArgs,
  })
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'oml-interrupt-'))
  ;[kind, internet] = await Promise.all([
    kindWithStandInNode(trainerBaseImage()),
    startInternetStandIn(),
    cacheTrainerLayers(),
  ])
  hostsBefore = await readFile('/etc/hosts', 'utf8')
}, 600_000)

afterAll(async () => {
  await docker(['image', 'rm', LAYERS_TAG])
  await kind?.stop(clusters)
  await internet?.stop()
  if (work) await rm(work, { recursive: true, force: true })
}, 60_000)

/** A cluster name of the test's own, removed by afterAll whatever happens. */
function clusterName(): string {
  const name = `oml-stop-${process.pid}-${++count}`
  clusters.push(name)
  return name
}

/** The flags and environment of a run that gets as far as `kind create cluster`. */
function runInputs(cluster: string): { args: string[]; env: Record<string, string> } {
  return {
    args: [
      '--signing-key',
      KEY_FILE,
      '--dataset',
      DATASET,
      '--cluster-name',
      cluster,
      '--trainer-base-image',
      trainerBaseImage(),
    ],
    env: {
      ...internet.env,
      ...kind.env,
      HOME: work,
      TMPDIR: work,
      OML_CHAINS_SIGNING_KEY_PASSWORD: KEY_PASSWORD,
    },
  }
}

interface Started {
  pid: number
  /** stderr: the progress. */
  output(): string
  stderr(): string
  stdout(): string
  /** How the process ended: its exit code, or the signal that killed it. */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts `node ARGS` in a process group of its own, as a terminal would. */
function start(args: string[], env: Record<string, string>): Started {
  const child = spawn(process.execPath, args, { cwd: work, env, detached: true })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const commandLines = watchCommandLines()
  // Once it ended: the key shows nowhere it left (output, files, command lines but its own).
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  ).then(async (how) => {
    const seen = await commandLines.stop()
    expectNoSecrets(
      'a stopped oml-chains run',
      [readFileSync(KEY_FILE, 'utf8')],
      [
        { name: 'stdout', text: stdout },
        { name: 'stderr', text: stderr },
        ...(await filesUnder(work)),
        ...seen.filter((a) => a.name !== `/proc/${child.pid}/cmdline`),
      ],
    )
    return how
  })
  return {
    pid: child.pid!,
    output: () => stderr,
    stderr: () => stderr,
    stdout: () => stdout,
    ended,
  }
}

/** The trainer image's runner-side tag, as the build names it in the log. */
function trainerTag(log: string): string | undefined {
  return /tag (build-[0-9a-f]{16})/.exec(log)?.[1]
}

const tagged = (tag: string) => `127.0.0.1:5000/oml-chains/trainer:${tag}`

/**
 * Waits until the run is half-way: a node container of `cluster` runs and
 * the trainer image is built and tagged. Fails with the run's log if the
 * run ends first or this takes over two minutes.
 */
async function untilHalfWay(
  run: { output(): string; ended: Promise<unknown> },
  cluster: string,
): Promise<string> {
  let ended = false
  void run.ended.then(() => (ended = true))
  const deadline = Date.now() + 120_000
  for (let pause = 50; ; pause = Math.min(pause * 2, 500)) {
    const tag = trainerTag(run.output())
    const [nodes, image] = await Promise.all([
      docker([
        'ps',
        '--filter',
        `label=io.x-k8s.kind.cluster=${cluster}`,
        '--format',
        '{{.Names}}',
      ]),
      tag ? docker(['image', 'inspect', tagged(tag)]) : undefined,
    ])
    if (tag && nodes.stdout.trim() && image?.code === 0) return tagged(tag)
    if (ended || Date.now() > deadline) {
      throw new Error(`the run did not get half-way (ended: ${ended}):\n${run.output()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, pause))
  }
}

/** Waits until the run's log holds `text`; fails after 30 s with the log. */
async function untilSaid(run: Started, text: string): Promise<void> {
  const deadline = Date.now() + 30_000
  for (let pause = 5; !run.stderr().includes(text); pause = Math.min(pause * 2, 200)) {
    if (Date.now() > deadline) throw new Error(`the run never said "${text}":\n${run.stderr()}`)
    await new Promise((resolve) => setTimeout(resolve, pause))
  }
}

/** Processes whose command line names `word` (kind, docker and builds of the run). */
async function processesNaming(word: string): Promise<string[]> {
  const found: string[] = []
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(word)) found.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`)
  }
  return found
}

/** What a stopped run must not leave on the machine. */
async function expectNothingLeft(cluster: string, tag: string): Promise<void> {
  expect(await kind.nodes(cluster)).toEqual([])
  expect((await docker(['image', 'inspect', tag])).code).not.toBe(0)
  expect(await processesNaming(cluster)).toEqual([])
  expect(await readFile('/etc/hosts', 'utf8')).toBe(hostsBefore)
  expect(internet.refused()).toEqual([])
}

function result(run: Started): RunResult {
  return JSON.parse(run.stdout()) as RunResult
}

describe('oml-chains run, stopped while kind creates the cluster', () => {
  it('Ctrl-C (SIGINT to the process group): removes the cluster and the trainer tag, exits 130', async () => {
    const cluster = clusterName()
    const { args, env } = runInputs(cluster)
    const run = start([cliBundle, 'run', ...args], env)
    const tag = await untilHalfWay(run, cluster)

    process.kill(-run.pid, 'SIGINT')
    const ended = await run.ended

    expect(ended.code, run.stderr()).toBe(130)
    expect(run.stderr()).toMatch(
      /^oml-chains run: SIGINT: stopping the run and removing what it created/m,
    )
    expect(run.stderr()).toContain(`removed kind cluster ${cluster}; trainer image ${tag}`)
    expect(run.stderr().trimEnd().split('\n').pop()).toBe('oml-chains run: interrupted by SIGINT')
    expect(result(run)).toMatchObject({
      verdict: 'error',
      error: 'interrupted by SIGINT',
      digest: null,
    })
    expect(run.stderr()).not.toMatch(/\n\s+at /)
    await expectNothingLeft(cluster, tag)
    recordFault('interrupted: Ctrl-C during kind create', 'reported')
  }, 180_000)

  it('kill (SIGTERM to the command alone): stops its kind and docker too, removes what it made, exits 143', async () => {
    const cluster = clusterName()
    const { args, env } = runInputs(cluster)
    const run = start([cliBundle, 'run', ...args], env)
    const tag = await untilHalfWay(run, cluster)
    // kind and `docker logs` under it: only the command hears the signal.
    expect((await processesNaming(cluster)).length).toBeGreaterThan(0)

    process.kill(run.pid, 'SIGTERM')
    const ended = await run.ended

    expect(ended.code, run.stderr()).toBe(143)
    expect(run.stderr()).toContain(`removed kind cluster ${cluster}; trainer image ${tag}`)
    expect(result(run).error).toBe('interrupted by SIGTERM')
    await expectNothingLeft(cluster, tag)
    recordFault('interrupted: SIGTERM during kind create', 'reported')
  }, 180_000)

  it('a second signal exits at once, naming what is left and how to remove it', async () => {
    const cluster = clusterName()
    const { args, env } = runInputs(cluster)
    const run = start([cliBundle, 'run', ...args], env)
    const tag = await untilHalfWay(run, cluster)

    process.kill(run.pid, 'SIGINT')
    await untilSaid(run, 'SIGINT: stopping')
    process.kill(run.pid, 'SIGINT')
    const ended = await run.ended

    expect(ended.code, run.stderr()).toBe(130)
    expect(run.stderr()).toContain(
      `oml-chains run: SIGINT again: exiting now, the cleanup unfinished; left behind: kind cluster ${cluster} (kind delete cluster --name ${cluster}); trainer image ${tag} (docker rmi ${tag})`,
    )
    expect(run.stderr()).not.toContain('interrupted by SIGINT')
    recordFault('interrupted: a second signal', 'reported')
  }, 180_000)

  it('--keep-cluster: the stopped run keeps the cluster and says how to reach it', async () => {
    const cluster = clusterName()
    const { args, env } = runInputs(cluster)
    const run = start([cliBundle, 'run', ...args, '--keep-cluster'], env)
    const tag = await untilHalfWay(run, cluster)

    process.kill(run.pid, 'SIGTERM')
    const ended = await run.ended

    expect(ended.code, run.stderr()).toBe(143)
    expect(run.stderr()).toContain(
      `keep-cluster: left running kind cluster ${cluster} (kubectl context kind-${cluster}); trainer image ${tag} in the runner's Docker`,
    )
    expect(await kind.nodes(cluster)).toEqual([`${cluster}-control-plane`])
    await docker(['image', 'rm', tag])
  }, 180_000)
})

describe('oml-chains run whose timeout comes while kind creates the cluster', () => {
  it('stops kind at the deadline, says so, and removes what the run created', async () => {
    const cluster = clusterName()
    const { args, env } = runInputs(cluster)
    const run = start([cliBundle, 'run', ...args, '--timeout', '12s'], env)
    const tag = await untilHalfWay(run, cluster)
    const ended = await run.ended

    expect(ended.code, run.stderr()).toBe(1)
    expect(result(run).error).toMatch(
      new RegExp(
        `^\`kind create cluster --name ${cluster}\` did not finish by the run's deadline \\(the timeout input\\) and was stopped; kind's last words: `,
      ),
    )
    expect(run.stderr()).toContain(`removed kind cluster ${cluster}; trainer image ${tag}`)
    await expectNothingLeft(cluster, tag)
    recordFault('timeout in the cluster phase (kind create)', 'reported')
  }, 180_000)
})

describe('the action, its main step killed while kind creates the cluster', () => {
  it('the post step removes the cluster and the trainer tag the main step had recorded', async () => {
    const cluster = clusterName()
    const runnerTemp = path.join(work, 'runner-temp')
    await mkdir(runnerTemp, { recursive: true })
    const inputs = {
      dataset: DATASET,
      'cluster-name': cluster,
      'trainer-base-image': trainerBaseImage(),
      'signing-key': KEY_FILE,
      'signing-key-password': KEY_PASSWORD,
    }
    const env = { ...internet.env, ...kind.env, RUNNER_TEMP: runnerTemp }

    let tag = ''
    const main = await runActionStep(inputs, {
      env,
      // The runner ends a cancelled step's whole process tree.
      whileRunning: async (step) => {
        tag = await untilHalfWay(step, cluster)
        process.kill(-step.pid, 'SIGKILL')
      },
    })
    expect(main.stdout).not.toContain('removed kind cluster')
    expect(await kind.nodes(cluster)).toEqual([`${cluster}-control-plane`])

    const post = await runActionStep(inputs, { env, state: main.state })

    expect(post.code, post.stdout + post.stderr).toBe(0)
    expect(post.stdout).toContain(`removed kind cluster ${cluster}; trainer image ${tag}`)
    await expectNothingLeft(cluster, tag)
    recordFault('main step killed, post step cleans up', 'reported')
  }, 180_000)
})
