/**
 * The benchmark (`npm run bench`, scripts/bench.sh): the committed bundle
 * (dist/index.js) end to end, to the policy phase, on the cluster from real
 * parts (test/harness/node/cluster.ts) with the action installing real Tekton
 * Pipelines and real Tekton Chains; only ec is its stand-in. Each first run
 * gets a cluster of its own, fresh: nothing installed, no image on the node.
 * The last cluster then takes a second run, as a kept cluster would.
 *
 * It prints, for each run and as medians: the wall time of the step; the
 * critical path and the sequential sum, both from the run's own timings file;
 * and the two ratios. Then the second run, the bundle sizes, the CLI helpers'
 * start time (against `node -e 0`) and the step's peak memory.
 *
 * Not a test: it checks only that each run passed, since the time of a run
 * that failed means nothing. BENCH_RUNS sets the number of first runs (3).
 */
import { spawnSync } from 'node:child_process'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, it } from 'vitest'
import { formatReference } from '../src/oci/reference.js'
import { ownMs, type TimingsDocument } from '../src/timing.js'
import { runActionStep } from '../test/harness/action.js'
import { EC_FIXTURES, publishEcStandIn } from '../test/harness/action-env.js'
import { startInternetStandIn, type InternetStandIn } from '../test/harness/internet.js'
import { NODE_IP, startNodeCluster, type NodeCluster } from '../test/harness/node/cluster.js'
import { buildTrainerImage } from '../test/harness/node/trainer-image.js'
import { tektonChains } from '../test/harness/releases/tekton-chains.js'
import { publishTektonPipelineRelease } from '../test/harness/releases/tekton-pipeline.js'
import { useRunnerDirs, type RunnerDirs } from '../test/harness/runner-dirs.js'
import { repoRoot } from '../test/harness/tools.js'
import { publishDataset } from '../test/harness/trainer.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 3)
/** Where the last results go as JSON (docs/performance.md quotes them), next to each run's log. */
const RESULTS = path.join(repoRoot, '.tools/bench/results.json')

/** Targets of the flow: the wall time against what it cannot go below, and against no concurrency. */
const TARGET_OF_CRITICAL_PATH = 1.1
const TARGET_OF_SEQUENTIAL = 0.6

interface Measured {
  run: string
  wallMs: number
  criticalPathMs: number
  criticalPath: string[]
  sequentialMs: number
  /** The Pipeline phase: the training itself. */
  trainingMs: number
  maxRssKiB: number
  phases: { phase: string; start: number; ms: number; waited: number }[]
}

/** A cluster with what a run needs published: Tekton's releases, ec, the trainer, the dataset. */
interface Stage {
  cluster: NodeCluster
  internet: InternetStandIn
  chainsVersion: string
  trainer: string
  stop(): Promise<void>
}

async function freshStage(dirs: RunnerDirs): Promise<Stage> {
  const [cluster, internet] = await Promise.all([startNodeCluster(), startInternetStandIn()])
  const stop = async () => {
    await cluster.stop()
    await internet.stop()
  }
  try {
    const [, , chains, trainer] = await Promise.all([
      publishEcStandIn(internet),
      publishTektonPipelineRelease(internet, cluster.registry.host),
      tektonChains.publish(internet, cluster.registry.host),
      buildTrainerImage(cluster.registry, dirs.temp),
      publishDataset(`${cluster.registry.host}/datasets/iris:data`),
    ])
    return {
      cluster,
      internet,
      chainsVersion: chains.version,
      trainer: formatReference(trainer),
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** One run of the action's step on `stage`, as test/node/action.test.ts runs it, measured. */
async function measure(stage: Stage, dirs: RunnerDirs, run: string): Promise<Measured> {
  const { cluster, internet } = stage
  const rssFile = path.join(dirs.temp, `max-rss-${run}`)
  const step = await runActionStep(
    {
      cluster: 'existing',
      kubeconfig: cluster.kube.kubeconfigPath,
      dataset: `${cluster.registry.name}/datasets/iris:data`,
      image: `${cluster.registry.name}/models/bench-${run}`,
      'trainer-image': stage.trainer,
      'tekton-chains-version': stage.chainsVersion,
      'allowed-dataset-prefixes': `${cluster.registry.name}/datasets/`,
    },
    {
      env: {
        RUNNER_TOOL_CACHE: dirs.toolCache,
        ...internet.env,
        NO_PROXY: `${internet.env.NO_PROXY},${NODE_IP},registry.local`,
        EC_STAND_IN_REPORT: path.join(EC_FIXTURES, 'happy-day.json'),
        NODE_OPTIONS: `--import=${path.join(repoRoot, 'bench/max-rss.mjs')}`,
        BENCH_MAX_RSS_FILE: rssFile,
      },
      searchSecrets: false,
    },
  )
  // The step's log, to read where a slow phase spent its time.
  await writeFile(path.join(path.dirname(RESULTS), `${run}.log`), step.stdout)
  if (step.code !== 0 || step.outputs.verdict !== 'pass' || !step.files.timings) {
    throw new Error(
      `run ${run} did not pass (exit ${step.code}, verdict ${step.outputs.verdict}): its time means nothing\n${step.stdout.slice(-4000)}`,
    )
  }
  const timings = JSON.parse(step.files.timings) as TimingsDocument
  const training = timings.phases.find((p) => p.phase === 'Pipeline')
  return {
    run,
    wallMs: step.wallMs,
    criticalPathMs: timings.criticalPath.ms,
    criticalPath: timings.criticalPath.phases,
    sequentialMs: timings.sequentialMs,
    trainingMs: training ? ownMs(training) : 0,
    maxRssKiB: Number(await readFile(rssFile, 'utf8')),
    phases: timings.phases.map((p) => ({
      phase: p.phase,
      start: p.start,
      ms: p.ms,
      waited: p.ms - ownMs(p),
    })),
  }
}

/** The benchmark's report, on stdout as it comes. */
const say = (line: string) => process.stdout.write(`${line}\n`)
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const ratio = (a: number, b: number) => (a / b).toFixed(2)

/** Median wall time of `node args`, over `times` starts. */
function startTime(args: string[], times = 7): number {
  const walls: number[] = []
  for (let i = 0; i < times; i++) {
    const started = performance.now()
    const result = spawnSync(process.execPath, args, { cwd: repoRoot, stdio: 'ignore' })
    walls.push(performance.now() - started)
    if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited ${result.status}`)
  }
  return median(walls)
}

async function bundleSizes(): Promise<Record<string, number>> {
  const size = async (file: string) => (await stat(path.join(repoRoot, file))).size
  const chunks = (await readdir(path.join(repoRoot, 'dist/cli'))).filter((f) => f.endsWith('.js'))
  const cli = await Promise.all(chunks.map((f) => size(`dist/cli/${f}`)))
  return {
    'dist/index.js': await size('dist/index.js'),
    'dist/cli/*.js': cli.reduce((sum, bytes) => sum + bytes, 0),
  }
}

function printRun(m: Measured): void {
  say(
    `${m.run.padEnd(8)} wall ${seconds(m.wallMs).padStart(8)}  critical path ${seconds(m.criticalPathMs).padStart(8)}` +
      `  sequential ${seconds(m.sequentialMs).padStart(8)}  wall/cp ${ratio(m.wallMs, m.criticalPathMs)}` +
      `  wall/seq ${ratio(m.wallMs, m.sequentialMs)}  training ${seconds(m.trainingMs)}`,
  )
  for (const p of m.phases) {
    const waited = p.waited > 0 ? ` (waited ${seconds(p.waited)} part-way)` : ''
    say(
      `           ${p.phase.padEnd(22)} at ${seconds(p.start).padStart(8)} for ${seconds(p.ms)}${waited}`,
    )
  }
  say(`           critical path: ${m.criticalPath.join(' → ')}`)
}

describe('benchmark', () => {
  it(`${RUNS} first runs on fresh clusters, then a second run on the kept cluster`, async () => {
    await mkdir(path.dirname(RESULTS), { recursive: true })
    const dirs = await useRunnerDirs()
    const firsts: Measured[] = []
    let second: Measured | undefined
    try {
      for (let i = 1; i <= RUNS; i++) {
        const stage = await freshStage(dirs)
        try {
          const first = await measure(stage, dirs, `first-${i}`)
          printRun(first)
          firsts.push(first)
          if (i === RUNS) {
            second = await measure(stage, dirs, 'second')
            printRun(second)
          }
        } finally {
          await stage.stop()
        }
      }
    } finally {
      await dirs.restore()
    }

    const wall = median(firsts.map((m) => m.wallMs))
    const cp = median(firsts.map((m) => m.criticalPathMs))
    const seq = median(firsts.map((m) => m.sequentialMs))
    const wallOverCp = median(firsts.map((m) => m.wallMs / m.criticalPathMs))
    const wallOverSeq = median(firsts.map((m) => m.wallMs / m.sequentialMs))
    const helpers = {
      'node -e 0': startTime(['-e', '0']),
      'oml-chains keygen --help': startTime(['dist/cli/index.js', 'keygen', '--help']),
      'oml-chains key-check --help': startTime(['dist/cli/index.js', 'key-check', '--help']),
      'oml-chains provenance --help': startTime(['dist/cli/index.js', 'provenance', '--help']),
    }
    const sizes = await bundleSizes()
    const verdict = (value: number, target: number) => (value <= target ? 'met' : 'NOT MET')

    say(`\nmedians of ${firsts.length} first runs:`)
    say(`  wall ${seconds(wall)}, critical path ${seconds(cp)}, sequential sum ${seconds(seq)}`)
    say(
      `  wall / critical path: ${wallOverCp.toFixed(2)} (target ≤ ${TARGET_OF_CRITICAL_PATH}: ${verdict(wallOverCp, TARGET_OF_CRITICAL_PATH)})`,
    )
    say(
      `  wall / sequential sum: ${wallOverSeq.toFixed(2)} (target ≤ ${TARGET_OF_SEQUENTIAL}: ${verdict(wallOverSeq, TARGET_OF_SEQUENTIAL)})`,
    )
    if (second) {
      const besides = second.wallMs - second.trainingMs
      say(
        `second run on the kept cluster: ${seconds(second.wallMs)}, of which training ${seconds(second.trainingMs)}: ` +
          `${seconds(besides)} besides the training (target < 60 s: ${verdict(besides, 60_000)})`,
      )
    }
    say(`peak memory of the step: ${Math.max(...firsts.map((m) => m.maxRssKiB)) >> 10} MiB`)
    say(
      `bundle sizes: ${Object.entries(sizes)
        .map(([file, bytes]) => `${file} ${(bytes / 1024 / 1024).toFixed(1)} MiB`)
        .join(', ')}`,
    )
    say('start time (median of 7):')
    for (const [command, ms] of Object.entries(helpers)) {
      const target = command.startsWith('oml-chains')
        ? ` (target < 300 ms: ${verdict(ms, 300)})`
        : ''
      say(`  ${command.padEnd(30)} ${Math.round(ms)} ms${target}`)
    }

    await writeFile(
      RESULTS,
      `${JSON.stringify({ date: new Date().toISOString(), firsts, second, helpers, sizes }, null, 2)}\n`,
    )
    say(`results: ${RESULTS}`)
  })
})
