/**
 * The action's Tekton and pipeline phases on a cluster from real parts: the
 * real control plane, a real node (containerd, runc, kubelet, CNI, kube-proxy)
 * and real Tekton Pipelines v1.15.0, its images built here from its own
 * module and its release.yaml made from its config/ (test/harness/releases),
 * served to the action as the release asset. The trainer image is built from
 * the real Containerfile and pulled by the node from registry.local:5000.
 *
 * Tekton Chains stays a stand-in here: its release-shaped manifest, with its
 * controller Deployment running a pod that only sleeps, so that the action's
 * Tekton phase finds the Deployment it waits for. Signing is not tested here.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { V1Pod } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { prepareRunNamespace } from '../../src/phases/credentials.js'
import { runPipeline } from '../../src/phases/pipeline.js'
import { prepareSigningKey } from '../../src/phases/signing.js'
import { installTekton } from '../../src/phases/tekton.js'
import { prepareTrainerImage } from '../../src/phases/trainer-image.js'
import { parseManifests, type KubeObject } from '../../src/kube/objects.js'
import { waitFor } from '../../src/kube/wait.js'
import { RegistryClient } from '../../src/oci/client.js'
import { formatReference, parseReference, type Reference } from '../../src/oci/reference.js'
import { Docker } from '../../src/tools/docker.js'
import { fetchTektonRelease } from '../../src/tools/tekton/release.js'
import { trainerBaseImage } from '../harness/docker.js'
import { startNodeCluster, type NodeCluster } from '../harness/node/cluster.js'
import { startReleaseHost, type ReleaseHost } from '../harness/release-host.js'
import { RELEASES_PATH, serveTektonRelease } from '../harness/releases/serve.js'
import {
  pushTektonPipelineRelease,
  type TektonPipelineRelease,
} from '../harness/releases/tekton-pipeline.js'
import { useRunnerDirs, type RunnerDirs } from '../harness/runner-dirs.js'
import { repoRoot } from '../harness/tools.js'
import { publishDataset } from '../harness/trainer.js'

const PIPELINES_VERSION = 'v1.15.0'
const CHAINS_VERSION = 'v0.29.2'
const target = { namespace: 'oml-chains', serviceAccount: 'oml-chains-pipeline' }

let cluster: NodeCluster
let host: ReleaseHost
let dirs: RunnerDirs
let release: TektonPipelineRelease
/** The registry as the host pushes to it (127.0.0.1:5000), and as pods name it. */
let client: RegistryClient

/**
 * The release-shaped Chains manifest with its controller pod made runnable
 * here: the busybox image the Pipelines release already holds, sleeping.
 */
async function chainsStandInManifest(shellImage: string): Promise<string> {
  const file = path.join(repoRoot, 'test/harness/manifests/tekton-chains-release.yaml')
  const objects = parseManifests(await readFile(file, 'utf8'), file)
  for (const object of objects) {
    if (object.kind !== 'Deployment') continue
    const spec = object.spec as {
      template: { spec: { containers: { image: string; command?: string[] }[] } }
    }
    for (const container of spec.template.spec.containers) {
      container.image = shellImage
      container.command = ['sleep', '2147483647']
    }
  }
  return objects.map((o: KubeObject) => stringify(o)).join('---\n')
}

beforeAll(async () => {
  dirs = await useRunnerDirs()
  ;[cluster, host] = await Promise.all([startNodeCluster(), startReleaseHost()])
  client = new RegistryClient({ insecure: () => true })
  release = await pushTektonPipelineRelease(cluster.registry.host)
  const shell = release.images.find((image) => image.includes('/bases/busybox@'))
  if (!shell) throw new Error(`the Pipelines release names no busybox image: ${release.images}`)
  const hosts = { manifests: host, api: host }
  serveTektonRelease(hosts, {
    component: 'pipeline',
    version: PIPELINES_VERSION,
    manifest: release.manifest,
  })
  serveTektonRelease(hosts, {
    component: 'chains',
    version: CHAINS_VERSION,
    manifest: await chainsStandInManifest(shell),
  })
}, 600_000)

afterAll(async () => {
  await cluster?.stop()
  await host?.close()
  await dirs?.restore()
})

const plan = {
  tektonPipelinesVersion: PIPELINES_VERSION,
  tektonChainsVersion: CHAINS_VERSION,
  embeddedRegistry: true,
}

/** The action's Tekton phase, fetching from the release host as from infra.tekton.dev and GitHub. */
async function install() {
  const sources = { manifestBase: host.url + RELEASES_PATH, githubApi: host.url }
  return installTekton(plan, await prepareSigningKey({}), {
    kube: cluster.client,
    deadline: Date.now() + 300_000,
    fetchRelease: (component, version) => fetchTektonRelease(component, version, sources),
  })
}

interface PodSummary {
  name: string
  phase?: string
  images: string[]
  imageIDs: string[]
  ready: boolean[]
}

async function podsIn(namespace: string, labelSelector?: string): Promise<PodSummary[]> {
  const pods = await cluster.client.core.listNamespacedPod({ namespace, labelSelector })
  return pods.items.map((pod) => ({
    name: pod.metadata!.name!,
    phase: pod.status?.phase,
    images: pod.spec!.containers.map((c) => c.image!),
    imageIDs: (pod.status?.containerStatuses ?? []).map((s) => s.imageID),
    ready: (pod.status?.containerStatuses ?? []).map((s) => s.ready),
  }))
}

describe("the Tekton phase on a real node, with Tekton's own release built here", () => {
  it('installs it, waits for its Deployments and is admitted by its webhook; the pods run the images built here', async () => {
    const result = await install()
    expect(result.pipelines).toMatchObject({ component: 'pipeline', version: PIPELINES_VERSION })
    expect(result.pipelines.release?.sha256).toBe(release.sha256)
    expect(result.pipelines.release?.verifiedBy).toBe("the digest of GitHub's release asset")

    // `kubectl get pods -A`, as far as Tekton goes: every container runs an
    // image of the release, pulled from registry.local:5000 by digest.
    for (const namespace of release.namespaces) {
      const pods = await podsIn(namespace)
      expect(pods.length, namespace).toBeGreaterThan(0)
      for (const pod of pods) {
        expect(pod.phase, pod.name).toBe('Running')
        expect(pod.ready.every(Boolean), pod.name).toBe(true)
        for (const image of pod.images) {
          expect(release.images, `${pod.name} runs ${image}`).toContain(image)
          const digest = image.slice(image.indexOf('@'))
          expect(
            pod.imageIDs.some((id) => id.endsWith(digest)),
            pod.name,
          ).toBe(true)
        }
      }
    }
    const controllers = await podsIn('tekton-pipelines', 'app=tekton-pipelines-controller')
    const webhooks = await podsIn('tekton-pipelines', 'app=tekton-pipelines-webhook')
    expect(controllers).toHaveLength(1)
    expect(webhooks).toHaveLength(1)
  })
})

describe('the pipeline phase on a real node with real Tekton', () => {
  let trainer: Reference
  let dataset: Reference
  let datasetDigest: string

  beforeAll(async () => {
    // Independent of the test above: a second install keeps what is there.
    await install()
    const built = await prepareTrainerImage(
      { source: 'build', baseImage: trainerBaseImage() },
      {
        docker: new Docker(),
        registry: client,
        embeddedRegistry: Promise.resolve({ host: cluster.registry.name }),
        runTag: 'node-test',
        actionRoot: repoRoot,
        workDir: dirs.temp,
        loopback: cluster.registry.host,
        log: () => undefined,
      },
    )
    trainer = built.image
    datasetDigest = await publishDataset(`${cluster.registry.host}/datasets/iris:data`)
    dataset = parseReference(`${cluster.registry.name}/datasets/iris@${datasetDigest}`)
    await prepareRunNamespace(cluster.client, target, Date.now() + 60_000)
  }, 600_000)

  const output = () => {
    const lines: string[] = []
    return {
      lines,
      info: (line: string) => lines.push(line),
      startGroup: (name: string) => lines.push(`::group::${name}`),
      endGroup: () => lines.push('::endgroup::'),
    }
  }

  it('trains in a real pod: the model digest is what the registry serves, the dataset among the results', async () => {
    const logs = output()
    const image = parseReference(`${cluster.registry.name}/models/iris:trained`)
    const outcome = await runPipeline(
      { image, dataset, trainerImage: trainer, params: {}, ...target },
      { kube: cluster.client, deadline: Date.now() + 300_000, output: logs },
    )
    const served = await client.resolve(
      parseReference(`${cluster.registry.host}/models/iris:trained`),
    )
    expect(outcome.imageDigest).toBe(served.digest)
    expect(outcome.imageUrl).toBe(formatReference(image))
    expect(outcome.results.DATASET_ARTIFACT_INPUTS).toEqual({
      uri: `${cluster.registry.name}/datasets/iris`,
      digest: datasetDigest,
    })
    // The step's own output, followed live through the API server from the kubelet.
    expect(logs.lines).toContain('::group::task train')
    expect(logs.lines.some((l) => /^\[train\/train\] accuracy 0\.\d+/.test(l))).toBe(true)

    // The TaskRun's pod completes, its step from the trainer image by digest.
    // Real Tekton calls the TaskRun done when its steps have ended, before the
    // kubelet has reported the pod's phase: watched, not read once.
    const name = outcome.pipelineRun.split('/')[1]!
    const selector = `tekton.dev/pipelineRun=${name}`
    await waitFor<V1Pod>(
      cluster.client,
      { apiVersion: 'v1', kind: 'Pod', namespace: target.namespace },
      (pods) =>
        pods.some(
          (p) =>
            p.metadata?.labels?.['tekton.dev/pipelineRun'] === name &&
            p.status?.phase === 'Succeeded',
        ),
      { deadline: Date.now() + 60_000, what: `the pod of ${outcome.pipelineRun} to succeed` },
    )
    const pods = await podsIn(target.namespace, selector)
    expect(pods).toHaveLength(1)
    expect(pods[0]!.images).toContain(formatReference(trainer))
  })

  it("fails with the failing step's own log lines when the trainer fails", async () => {
    const missing = parseReference(`${cluster.registry.name}/datasets/iris:none`)
    const run = runPipeline(
      {
        image: parseReference(`${cluster.registry.name}/models/iris:failed`),
        dataset: missing,
        trainerImage: trainer,
        params: {},
        ...target,
      },
      { kube: cluster.client, deadline: Date.now() + 300_000, output: output() },
    )
    await expect(run).rejects.toThrow(/\nfailing task: train, step: train /)
    await expect(run).rejects.toThrow(
      /error: registry\.local:5000\/datasets\/iris:none: no such manifest in the registry \(404\)/,
    )
  })

  const absentTrainer = () =>
    parseReference(`${cluster.registry.name}/oml-chains/trainer@sha256:${'0'.repeat(64)}`)

  it('names the image pull the kubelet reports when the trainer image is missing', async () => {
    const run = runPipeline(
      {
        image: parseReference(`${cluster.registry.name}/models/iris:unpulled`),
        dataset,
        trainerImage: absentTrainer(),
        params: {},
        ...target,
      },
      { kube: cluster.client, deadline: Date.now() + 180_000, output: output() },
    )
    // Tekton gives up after its image pull back-off and quotes the kubelet.
    await expect(run).rejects.toThrow(
      /\nfailing task: train, step: train \(TaskRunImagePullFailed: .*ErrImagePull: .*registry\.local:5000\/oml-chains\/trainer@sha256:0{64}: not found/,
    )
  })

  it('names the image pull when the run times out before Tekton gives up on it', async () => {
    const run = runPipeline(
      {
        image: parseReference(`${cluster.registry.name}/models/iris:unpulled-late`),
        dataset,
        trainerImage: absentTrainer(),
        params: {},
        ...target,
      },
      { kube: cluster.client, deadline: Date.now() + 15_000, output: output() },
    )
    await expect(run).rejects.toThrow(
      /^timed out after 15\.\ds waiting for PipelineRun oml-chains\/oml-chains-\w+ to finish; last seen: Running: .*; pod oml-chains-\w+-train-pod: container step-train waiting \((ErrImagePull|ImagePullBackOff): .*registry\.local:5000\/oml-chains\/trainer@sha256:0{64}.*; the PipelineRun was cancelled$/s,
    )
  })

  it('cancels a run that does not finish by the deadline, and says what it saw last', async () => {
    const run = runPipeline(
      {
        image: parseReference(`${cluster.registry.name}/models/iris:late`),
        dataset,
        trainerImage: trainer,
        params: {},
        ...target,
      },
      { kube: cluster.client, deadline: Date.now() + 2_000, output: output() },
    )
    await expect(run).rejects.toThrow(
      /^timed out after 2\.\ds waiting for PipelineRun oml-chains\/oml-chains-\w+ to finish; last seen: .*; the PipelineRun was cancelled$/s,
    )
    const runs = await cluster.client.objects.list<KubeObject & { spec: { status?: string } }>(
      'tekton.dev/v1',
      'PipelineRun',
      target.namespace,
    )
    const late = runs.items.find((r) =>
      (r.spec as { params?: { value: string }[] }).params?.some((p) => p.value.endsWith(':late')),
    )
    expect(late?.spec.status).toBe('Cancelled')
  })
})
