import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import * as tc from '@actions/tool-cache'
import { applyManifests } from '../../src/kube/apply.js'
import { connect } from '../../src/kube/client.js'
import { parseManifests } from '../../src/kube/objects.js'
import { runnerPlatform } from '../../src/tools/platform.js'
import { ecVersion, tektonChainsVersion, tektonPipelinesVersion } from '../../src/versions.js'
import { startTestCluster, type TestCluster } from './cluster.js'
import { startInternetStandIn, type InternetStandIn } from './internet.js'
import { startRegistry, type TestRegistry } from './registry.js'
import { useRunnerDirs, type RunnerDirs } from './runner-dirs.js'
import { startChainsStandIn } from './standins/chains.js'
import { startKubeletStandIn, type KubeletStandIn } from './standins/kubelet.js'
import { startTektonStandIn } from './standins/tekton.js'
import { repoRoot } from './tools.js'
import { publishDataset } from './trainer.js'

/**
 * Where the whole action runs in tests, as `cluster: existing`: the real API
 * server, registry and trainer, and stand-ins only for what needs containers
 * (Deployments, Tekton running the step, a kubelet serving its log, Chains
 * signing with real cosign). The runner's tool cache already holds the
 * release-shaped Tekton manifests, as after an earlier run. The one download
 * left, ec, comes from the github.com stand-in (internet.ts), which serves the
 * ec stand-in (standins/ec.mjs) as ec's release binary with its `.sha256`:
 * the action downloads, checks and caches it as it would ec, and nothing
 * leaves the machine, whether it has internet or not.
 */
export interface ActionEnvironment {
  registry: TestRegistry
  cluster: TestCluster
  dirs: RunnerDirs
  kubelet: KubeletStandIn
  internet: InternetStandIn
  /** The seed-style iris dataset, by tag, and the digest it was pushed as. */
  datasetRef: string
  datasetDigest: string
  /** The ec release asset on the github.com stand-in: its URL path, and its `.sha256`'s. */
  ec: { asset: string; checksum: string; url: string }
  /**
   * Environment for a run of the bundle: the tool cache, the internet
   * stand-in, and the ec report the ec stand-in replays (a file name in
   * test/fixtures/ec/, e.g. `happy-day.json`).
   */
  runEnv(ecReport: string): Record<string, string>
  stop(): Promise<void>
}

/** ec's real reports, which the ec stand-in replays (test/fixtures/ec/README.md). */
export const EC_FIXTURES = path.join(repoRoot, 'test/fixtures/ec')

/**
 * Publishes the ec stand-in on the github.com stand-in where conforma/cli
 * publishes ec for this machine: `ec_<os>_<arch>`, with the `.sha256` line
 * `sha256sum -b` writes in conforma/cli's release build.
 */
export async function publishEcStandIn(internet: InternetStandIn) {
  const bytes = await readFile(path.join(repoRoot, 'test/harness/standins/ec.mjs'))
  const { os, arch } = runnerPlatform()
  const name = `ec_${os}_${arch}`
  const asset = `/conforma/cli/releases/download/${ecVersion}/${name}`
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  internet.github.asset(asset, bytes)
  internet.github.asset(`${asset}.sha256`, `${sha256} *dist/${name}\n`)
  return { asset, checksum: `${asset}.sha256`, url: internet.github.url + asset }
}

export async function startActionEnvironment(): Promise<ActionEnvironment> {
  const [registry, cluster, dirs, internet] = await Promise.all([
    startRegistry(),
    startTestCluster(),
    useRunnerDirs(),
    startInternetStandIn(),
  ])
  const ec = await publishEcStandIn(internet)
  const manifests = path.join(repoRoot, 'test/harness/manifests')
  const pipelines = path.join(manifests, 'tekton-pipelines-release.yaml')
  await tc.cacheFile(pipelines, 'release.yaml', 'tekton-pipeline-release', tektonPipelinesVersion)
  await tc.cacheFile(
    path.join(manifests, 'tekton-chains-release.yaml'),
    'release.yaml',
    'tekton-chains-release',
    tektonChainsVersion,
  )
  const datasetRef = `${registry.host}/datasets/iris:data`
  const datasetDigest = await publishDataset(datasetRef)
  // Tekton's CRDs are in place before its stand-in watches them (the action
  // applies them again).
  const release = parseManifests(await readFile(pipelines, 'utf8'), pipelines)
  await applyManifests(
    connect(cluster.kube.kubeconfig),
    release.filter((o) => o.kind === 'CustomResourceDefinition'),
    Date.now() + 60_000,
  )
  const kubelet = await startKubeletStandIn(cluster.kube.kubeconfig)
  const [tekton, chains] = await Promise.all([
    startTektonStandIn(cluster.kube.kubeconfig, { kubelet }),
    startChainsStandIn(cluster.kube.kubeconfig, { kubelet }),
  ])
  return {
    registry,
    cluster,
    dirs,
    kubelet,
    internet,
    datasetRef,
    datasetDigest,
    ec,
    runEnv: (ecReport) => ({
      RUNNER_TOOL_CACHE: dirs.toolCache,
      ...internet.env,
      EC_STAND_IN_REPORT: path.join(EC_FIXTURES, ecReport),
    }),
    async stop() {
      await chains.stop()
      await tekton.stop()
      await kubelet.stop()
      await Promise.all([cluster.stop(), registry.stop(), internet.stop()])
      await dirs.restore()
    },
  }
}
