import { readFile } from 'node:fs/promises'
import path from 'node:path'
import * as tc from '@actions/tool-cache'
import { applyManifests } from '../../src/kube/apply.js'
import { connect } from '../../src/kube/client.js'
import { parseManifests } from '../../src/kube/objects.js'
import { tektonChainsVersion, tektonPipelinesVersion } from '../../src/versions.js'
import { startTestCluster, type TestCluster } from './cluster.js'
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
 * release-shaped Tekton manifests, as after an earlier run: nothing is
 * fetched from the internet but ec, which cannot be (see test/fixtures/ec).
 */
export interface ActionEnvironment {
  registry: TestRegistry
  cluster: TestCluster
  dirs: RunnerDirs
  kubelet: KubeletStandIn
  /** The seed-style iris dataset, by tag, and the digest it was pushed as. */
  datasetRef: string
  datasetDigest: string
  stop(): Promise<void>
}

export async function startActionEnvironment(): Promise<ActionEnvironment> {
  const [registry, cluster, dirs] = await Promise.all([
    startRegistry(),
    startTestCluster(),
    useRunnerDirs(),
  ])
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
    datasetRef,
    datasetDigest,
    async stop() {
      await chains.stop()
      await tekton.stop()
      await kubelet.stop()
      await Promise.all([cluster.stop(), registry.stop()])
      await dirs.restore()
    },
  }
}
