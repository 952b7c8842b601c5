/**
 * The action's Tekton and pipeline phases on a cluster from real parts: the
 * real control plane, a real node (containerd, runc, kubelet, CNI, kube-proxy)
 * and real Tekton Pipelines v1.15.0 and Tekton Chains (v0.26.3, the newest
 * the Go module proxy serves), their images built here from their own modules
 * and their release.yaml made from their config/ (test/harness/releases),
 * served to the action as the release assets. The trainer image is built from
 * the real Containerfile and pulled by the node from registry.local:5000.
 *
 * What Chains makes of the runs, and what an existing Chains may hold:
 * chains.test.ts.
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { prepareRunNamespace } from '../../src/phases/credentials.js'
import { runPipeline } from '../../src/phases/pipeline.js'
import { prepareSigningKey, type SigningKey } from '../../src/phases/signing.js'
import {
  CHAINS_CONFIG,
  CHAINS_CONTROLLER,
  CHAINS_NAMESPACE,
  installTekton,
  PIPELINES_NAMESPACE,
  SIGNING_SECRET,
} from '../../src/phases/tekton.js'
import type { KubeObject } from '../../src/kube/objects.js'
import { waitFor } from '../../src/kube/wait.js'
import { connect } from '../../src/kube/client.js'
import { RegistryClient } from '../../src/oci/client.js'
import { formatReference, parseReference, type Reference } from '../../src/oci/reference.js'
import { fetchTektonRelease } from '../../src/tools/tekton/release.js'
import { startNodeCluster, type NodeCluster } from '../harness/node/cluster.js'
import { buildTrainerImage } from '../harness/node/trainer-image.js'
import { startReleaseHost, type ReleaseHost } from '../harness/release-host.js'
import { RELEASES_PATH, serveTektonRelease } from '../harness/releases/serve.js'
import type { BuiltRelease } from '../harness/releases/built-release.js'
import { tektonChains } from '../harness/releases/tekton-chains.js'
import {
  pushTektonPipelineRelease,
  type TektonPipelineRelease,
} from '../harness/releases/tekton-pipeline.js'
import { useRunnerDirs, type RunnerDirs } from '../harness/runner-dirs.js'
import { publishDataset } from '../harness/trainer.js'
import { recordFault } from '../harness/faults/record.js'

const PIPELINES_VERSION = 'v1.15.0'
const target = { namespace: 'oml-chains', serviceAccount: 'oml-chains-pipeline' }

let cluster: NodeCluster
let host: ReleaseHost
let dirs: RunnerDirs
let release: TektonPipelineRelease
/** The Chains release built here. */
let chains: BuiltRelease
/** The registry as the host pushes to it (127.0.0.1:5000), and as pods name it. */
let client: RegistryClient

beforeAll(async () => {
  dirs = await useRunnerDirs()
  ;[cluster, host] = await Promise.all([startNodeCluster(), startReleaseHost()])
  client = new RegistryClient({ insecure: () => true })
  ;[release, chains] = await Promise.all([
    pushTektonPipelineRelease(cluster.registry.host),
    tektonChains.push(cluster.registry.host),
  ])
  for (const served of [release, chains]) {
    serveTektonRelease(
      { manifests: host, api: host },
      { component: served.component, version: served.version, manifest: served.manifest },
    )
  }
}, 600_000)

afterAll(async () => {
  await cluster?.stop()
  await host?.close()
  await dirs?.restore()
})

/** The action's Tekton phase, fetching from the release host as from infra.tekton.dev and GitHub. */
async function install(key?: SigningKey) {
  const sources = { manifestBase: host.url + RELEASES_PATH, githubApi: host.url }
  const plan = {
    tektonPipelinesVersion: PIPELINES_VERSION,
    tektonChainsVersion: chains.version,
    embeddedRegistry: true,
  }
  return installTekton(plan, key ?? (await prepareSigningKey({})), {
    kube: cluster.client,
    deadline: Date.now() + 300_000,
    fetchRelease: (component, version) => fetchTektonRelease(component, version, sources),
  })
}

/**
 * Deletes every object both releases made (webhook configurations and CRDs
 * too: a webhook configuration left without its webhook would refuse what a
 * new install applies) and waits until their namespaces are gone.
 */
async function removeTekton(): Promise<void> {
  const objects = [...release.objects, ...chains.objects].reverse()
  await Promise.all(
    objects.map((object) =>
      cluster.client.objects
        .delete(
          { ...object, metadata: { ...object.metadata } },
          undefined,
          undefined,
          undefined,
          undefined,
          'Background',
        )
        .catch(() => undefined),
    ),
  )
  const namespaces = objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name)
  await waitFor(
    cluster.client,
    { apiVersion: 'v1', kind: 'Namespace' },
    (found) => !found.some((n) => namespaces.includes(n.metadata?.name ?? '')),
    { deadline: Date.now() + 180_000, what: `namespaces ${namespaces.join(', ')} to be gone` },
  )
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

/** Secret and Deployment events in tekton-chains, in the order the API server sent them. */
async function recordChainsEvents() {
  const events: { kind: string; type: string; name: string; keys: string[] }[] = []
  const controllers = await Promise.all(
    (['secrets', 'deployments'] as const).map((resource) =>
      cluster.client.watch.watch(
        `/${resource === 'secrets' ? 'api/v1' : 'apis/apps/v1'}/namespaces/${CHAINS_NAMESPACE}/${resource}`,
        {},
        (type: string, object: { metadata: { name: string }; data?: object }) =>
          events.push({
            kind: resource,
            type,
            name: object.metadata.name,
            keys: Object.keys(object.data ?? {}),
          }),
        () => undefined,
      ),
    ),
  )
  return { events, stop: () => controllers.forEach((c) => c.abort()) }
}

describe("the Tekton phase on a real node, with Tekton's own release built here", () => {
  it('installs it, waits for its Deployments and is admitted by its webhook; the pods run the images built here', async () => {
    // Each test of this block stands alone: start from a cluster without Tekton.
    await removeTekton()
    const key = await prepareSigningKey({})
    const recorder = await recordChainsEvents()
    const result = await install(key)
    recorder.stop()
    expect(result.pipelines).toMatchObject({
      component: 'pipeline',
      version: PIPELINES_VERSION,
      action: 'installed',
    })
    expect(result.pipelines.release?.sha256).toBe(release.sha256)
    expect(result.pipelines.release?.verifiedBy).toBe("the digest of GitHub's release asset")
    expect(result.chains).toMatchObject({ action: 'installed', version: chains.version })
    expect(result.chains.release?.sha256).toBe(chains.sha256)

    // `kubectl get pods -A`, as far as Tekton goes: every container runs an
    // image of the release, pulled from registry.local:5000 by digest.
    for (const { namespaces, images } of [release, chains]) {
      for (const namespace of namespaces) {
        const pods = await podsIn(namespace)
        expect(pods.length, namespace).toBeGreaterThan(0)
        for (const pod of pods) {
          expect(pod.phase, pod.name).toBe('Running')
          expect(pod.ready.every(Boolean), pod.name).toBe(true)
          for (const image of pod.images) {
            expect(images, `${pod.name} runs ${image}`).toContain(image)
            const digest = image.slice(image.indexOf('@'))
            expect(
              pod.imageIDs.some((id) => id.endsWith(digest)),
              pod.name,
            ).toBe(true)
          }
        }
      }
    }
    expect(await podsIn('tekton-pipelines', 'app=tekton-pipelines-controller')).toHaveLength(1)
    expect(await podsIn('tekton-pipelines', 'app=tekton-pipelines-webhook')).toHaveLength(1)

    // Chains' config and key were in place before its controller existed.
    const config = await cluster.client.core.readNamespacedConfigMap({
      name: CHAINS_CONFIG,
      namespace: CHAINS_NAMESPACE,
    })
    expect(config.data).toMatchObject({
      'artifacts.taskrun.storage': 'oci',
      'storage.oci.repository.insecure': 'true',
    })
    const secret = await cluster.client.core.readNamespacedSecret({
      name: SIGNING_SECRET,
      namespace: CHAINS_NAMESPACE,
    })
    expect(Buffer.from(secret.data?.['cosign.pub'] ?? '', 'base64').toString()).toBe(
      key.publicKeyPem,
    )
    const signing = recorder.events.filter((e) => e.kind === 'secrets' && e.name === SIGNING_SECRET)
    expect(signing[0]).toMatchObject({
      type: 'ADDED',
      keys: ['cosign.key', 'cosign.password', 'cosign.pub'],
    })
    const firstController = recorder.events.findIndex(
      (e) => e.kind === 'deployments' && e.name === CHAINS_CONTROLLER,
    )
    expect(firstController).toBeGreaterThan(recorder.events.indexOf(signing[0]!))
  })

  describe('where Pipelines and Chains already run', () => {
    beforeAll(async () => {
      await install(await prepareSigningKey({}))
    }, 600_000)

    it('applying again is idempotent and keeps what is running', async () => {
      const controllers = await podsIn('tekton-pipelines', 'app=tekton-pipelines-controller')
      const again = await install(await prepareSigningKey({}))
      expect(again.pipelines).toEqual({
        component: 'pipeline',
        version: PIPELINES_VERSION,
        action: 'kept',
      })
      expect(again.chains).toEqual({ component: 'chains', version: chains.version, action: 'kept' })
      // Pipelines' pods were left alone.
      expect(await podsIn('tekton-pipelines', 'app=tekton-pipelines-controller')).toEqual(
        controllers,
      )
    })

    it('puts a new key into a running Chains and waits for the restarted controller pod', async () => {
      const [before] = await podsIn(CHAINS_NAMESPACE)
      const next = await prepareSigningKey({})
      await install(next)
      const secret = await cluster.client.core.readNamespacedSecret({
        name: SIGNING_SECRET,
        namespace: CHAINS_NAMESPACE,
      })
      expect(Buffer.from(secret.data?.['cosign.pub'] ?? '', 'base64').toString()).toBe(
        next.publicKeyPem,
      )
      // A new pod, running and ready, when the phase returns: a real restart.
      const running = (await podsIn(CHAINS_NAMESPACE)).filter((p) => p.phase === 'Running')
      expect(running.map((p) => p.name)).not.toContain(before?.name)
      expect(running.some((p) => p.ready.every(Boolean))).toBe(true)
    })
  })
})

describe('the pipeline phase on a real node with real Tekton', () => {
  let trainer: Reference
  let dataset: Reference
  let datasetDigest: string

  beforeAll(async () => {
    // Independent of the tests above: installs Tekton, or keeps what is there.
    await install()
    trainer = await buildTrainerImage(cluster.registry, dirs.temp)
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
    expect(outcome.results.DATASET_DIGEST).toBe(datasetDigest)
    expect(Number(outcome.results.ACCURACY)).toBeGreaterThan(0.9)
    // The step's own output, followed live through the API server from the
    // kubelet, prefixed and folded: one group for the task, around all its lines.
    const stepLines = logs.lines.filter((l) => l.startsWith('[train/train] '))
    expect(stepLines.some((l) => /^\[train\/train\] accuracy 0\.\d+$/.test(l))).toBe(true)
    const first = logs.lines.indexOf(stepLines[0]!)
    expect(logs.lines[first - 1]).toBe('::group::task train')
    expect(logs.lines.slice(first, first + stepLines.length)).toEqual(stepLines)
    expect(logs.lines[first + stepLines.length]).toBe('::endgroup::')
    expect(logs.lines.filter((l) => l.startsWith('::group::'))).toHaveLength(1)

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
    recordFault('trainer crashes (real node)', 'reported')
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
    recordFault('image cannot be pulled (real node)', 'reported')
  })

  it('names the image pull when the run times out before Tekton gives up on it', async () => {
    // Tekton fails a TaskRun at its pod's first ImagePullBackOff unless
    // default-imagepullbackoff-timeout says to wait: set here, the run's
    // deadline comes first on any machine, not only where the kubelet is slow
    // to back off.
    await setImagePullBackOffTimeout('5m')
    try {
      const run = runPipeline(
        {
          image: parseReference(`${cluster.registry.name}/models/iris:unpulled-late`),
          dataset,
          trainerImage: absentTrainer(),
          params: {},
          ...target,
        },
        { kube: cluster.client, deadline: Date.now() + 20_000, output: output() },
      )
      await expect(run).rejects.toThrow(
        /^timed out after \d+\.\ds waiting for PipelineRun oml-chains\/oml-chains-\w+ to finish; last seen: Running: .*; pod oml-chains-\w+-train-pod: container step-train waiting \((ErrImagePull|ImagePullBackOff): .*registry\.local:5000\/oml-chains\/trainer@sha256:0{64}.*; the PipelineRun was cancelled$/s,
      )
    } finally {
      await setImagePullBackOffTimeout(null)
    }
    recordFault('image cannot be pulled, timeout first (real node)', 'reported')
  })

  /** Sets (or, with null, removes) Tekton's default-imagepullbackoff-timeout. */
  async function setImagePullBackOffTimeout(value: string | null): Promise<void> {
    await cluster.client.core.patchNamespacedConfigMap(
      {
        name: 'config-defaults',
        namespace: PIPELINES_NAMESPACE,
        body: { data: { 'default-imagepullbackoff-timeout': value } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
  }

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
      /^timed out after \d+\.\ds waiting for PipelineRun oml-chains\/oml-chains-\w+ to finish; last seen: .*; the PipelineRun was cancelled$/s,
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
    recordFault('timeout in the pipeline phase (real node)', 'reported')
  })

  it('a node that stops answering mid-run: at the deadline the error names the node and why it is not Ready', async () => {
    const started = Date.now()
    const run = runPipeline(
      {
        image: parseReference(`${cluster.registry.name}/models/iris:frozen`),
        dataset,
        trainerImage: trainer,
        params: {},
        ...target,
      },
      { kube: cluster.client, deadline: started + 50_000, output: output() },
    )
    run.catch(() => undefined)
    type Pod = {
      metadata?: { name?: string; creationTimestamp?: string }
      status?: { phase?: string }
    }
    // The run's pod is running: its node stops answering now.
    await waitFor<Pod>(
      cluster.client,
      { apiVersion: 'v1', kind: 'Pod', namespace: target.namespace },
      (pods) =>
        pods.some(
          (p) =>
            p.status?.phase === 'Running' &&
            Date.parse(p.metadata?.creationTimestamp ?? '') >= started - 1_000,
        ),
      { deadline: started + 40_000, what: "the run's pod to run" },
    )
    const thaw = cluster.freezeKubelet()
    try {
      type Node = {
        metadata?: { name?: string }
        status?: { conditions?: { type: string; status: string }[] }
      }
      const notReady = (nodes: Node[]) =>
        nodes.some((n) =>
          n.status?.conditions?.some((c) => c.type === 'Ready' && c.status !== 'True'),
        )
      await waitFor<Node>(
        cluster.client,
        { apiVersion: 'v1', kind: 'Node', name: cluster.nodeName },
        notReady,
        { deadline: started + 48_000, what: `node ${cluster.nodeName} to be NotReady` },
      )
      await expect(run).rejects.toThrow(
        new RegExp(
          `^timed out after [\\d.]+s waiting for PipelineRun oml-chains/oml-chains-\\w+ to finish; last seen: .*; pod oml-chains-\\w+-train-pod is on node ${cluster.nodeName}, which is not Ready \\(Ready=Unknown since \\S+: NodeStatusUnknown, Kubelet stopped posting node status\\.\\).*; the PipelineRun was cancelled$`,
          's',
        ),
      )
      recordFault('node NotReady mid-run (real node)', 'reported')
    } finally {
      thaw()
      await waitFor<{
        metadata?: { name?: string }
        status?: { conditions?: { type: string; status: string }[] }
      }>(
        cluster.client,
        { apiVersion: 'v1', kind: 'Node', name: cluster.nodeName },
        (nodes) =>
          nodes.some((n) =>
            n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
          ),
        { deadline: Date.now() + 60_000, what: `node ${cluster.nodeName} to be Ready again` },
      )
    }
  }, 180_000)

  describe('what a user pipeline reports, and who may run one', () => {
    /** A user's Pipeline whose one step (a script in the shell image) writes IMAGE_URL and IMAGE_DIGEST. */
    function pipelineReporting(name: string, url: string, digest: string): string {
      const shell = release.images.find((image) => image.includes('/bases/busybox@'))!
      return [
        'apiVersion: tekton.dev/v1',
        'kind: Pipeline',
        `metadata: {name: ${name}}`,
        'spec:',
        '  params: [{name: IMAGE}, {name: DATASET}, {name: TRAINER_IMAGE}]',
        '  results:',
        '    - {name: IMAGE_URL, value: $(tasks.push.results.IMAGE_URL)}',
        '    - {name: IMAGE_DIGEST, value: $(tasks.push.results.IMAGE_DIGEST)}',
        '  tasks:',
        '    - name: push',
        '      params: [{name: IMAGE, value: $(params.IMAGE)}]',
        '      taskSpec:',
        '        params: [{name: IMAGE}]',
        '        results: [{name: IMAGE_URL}, {name: IMAGE_DIGEST}]',
        '        steps:',
        '          - name: push',
        `            image: ${shell}`,
        '            script: |',
        `              printf '%s' "${url}" > $(results.IMAGE_URL.path)`,
        `              printf '%s' "${digest}" > $(results.IMAGE_DIGEST.path)`,
        '',
      ].join('\n')
    }

    async function runUserPipeline(name: string, text: string, tag: string) {
      const pipelinePath = path.join(dirs.temp, `${name}.yaml`)
      await writeFile(pipelinePath, text)
      return runPipeline(
        {
          image: parseReference(`${cluster.registry.name}/models/iris:${tag}`),
          dataset,
          trainerImage: trainer,
          pipelinePath,
          params: {},
          ...target,
        },
        { kube: cluster.client, deadline: Date.now() + 120_000, output: output() },
      )
    }

    it('refuses an IMAGE_DIGEST that is not a sha256 digest', async () => {
      const text = pipelineReporting('short-digest', '$(params.IMAGE)', 'sha256:abc')
      await expect(runUserPipeline('short-digest', text, 'short')).rejects.toThrow(
        /^PipelineRun oml-chains\/oml-chains-\w+ succeeded but its IMAGE_DIGEST result is "sha256:abc", not sha256:<64 hex digits>$/,
      )
    })

    it('refuses an IMAGE_URL other than the image asked for: the model went elsewhere', async () => {
      const elsewhere = 'quay.io/someone-else/model:v1'
      const text = pipelineReporting('elsewhere', elsewhere, `sha256:${'a'.repeat(64)}`)
      const err = await runUserPipeline('elsewhere', text, 'asked').catch(
        (e: unknown) => e as Error,
      )
      expect((err as Error).message).toMatch(
        new RegExp(
          `^PipelineRun oml-chains/oml-chains-\\w+ succeeded but its IMAGE_URL result is "${elsewhere}", ` +
            `not the image asked for \\(registry\\.local:5000/models/iris:asked\\)$`,
        ),
      )
    })

    it('says why the PipelineRun cannot be created: an identity that may not create one', async () => {
      // On a shared cluster the action may hold a Role without `create` on
      // PipelineRuns: the real API server's RBAC refuses the create.
      const namespace = 'no-pipelineruns'
      const account = 'runner'
      const kube = cluster.client
      await kube.core.createNamespace({ body: { metadata: { name: namespace } } })
      await kube.core.createNamespacedServiceAccount({
        namespace,
        body: { metadata: { name: account } },
      })
      const rules = [
        { resources: ['tasks', 'pipelines'], verbs: ['get', 'list', 'create', 'patch', 'update'] },
        { resources: ['pipelineruns', 'taskruns'], verbs: ['get', 'list', 'watch'] },
      ].map((rule) => ({ apiGroups: ['tekton.dev'], ...rule }))
      const rbac = 'rbac.authorization.k8s.io/v1'
      await kube.objects.create({
        apiVersion: rbac,
        kind: 'Role',
        metadata: { name: 'no-runs', namespace },
        rules,
      } as KubeObject)
      await kube.objects.create({
        apiVersion: rbac,
        kind: 'RoleBinding',
        metadata: { name: 'no-runs', namespace },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'no-runs' },
        subjects: [{ kind: 'ServiceAccount', name: account, namespace }],
      } as KubeObject)
      const issued = await kube.core.createNamespacedServiceAccountToken({
        name: account,
        namespace,
        body: { spec: { audiences: ['https://kubernetes.default.svc.cluster.local'] } },
      })
      const limited = connect(
        stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            {
              name: 'test',
              cluster: {
                server: cluster.kube.server,
                'certificate-authority-data': Buffer.from(cluster.kube.ca).toString('base64'),
              },
            },
          ],
          users: [{ name: account, user: { token: issued.status?.token } }],
          contexts: [{ name: account, context: { cluster: 'test', user: account } }],
          'current-context': account,
        }),
      )
      const err = await runPipeline(
        {
          image: parseReference(`${cluster.registry.name}/models/iris:forbidden`),
          dataset,
          trainerImage: trainer,
          params: {},
          namespace,
          serviceAccount: account,
        },
        { kube: limited, deadline: Date.now() + 30_000, output: output() },
      ).catch((e: unknown) => e as Error)
      expect((err as Error).message).toBe(
        'creating the PipelineRun failed: HTTP 403: pipelineruns.tekton.dev is forbidden: ' +
          `User "system:serviceaccount:${namespace}:${account}" cannot create resource "pipelineruns" ` +
          `in API group "tekton.dev" in the namespace "${namespace}"`,
      )
    })
  })
})
