import type { V1Deployment, V1Pod, V1ReplicaSet } from '@kubernetes/client-node'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applyManifests } from '../../../src/kube/apply.js'
import { connect, type Kube } from '../../../src/kube/client.js'
import { conditionOf, parseManifests, type KubeObject } from '../../../src/kube/objects.js'
import { withRetry } from '../../../src/kube/retry.js'
import { waitFor, WaitTimeoutError } from '../../../src/kube/wait.js'
import { startKube, type TestKube } from '../kube.js'
import { repoRoot } from '../tools.js'
import { startDeploymentStandIn, type DeploymentStandIn, type Stall } from './deployments.js'

// Against a real kube-apiserver + etcd: once on its own (the stand-in writes
// Deployment status), once with kube-controller-manager (the real controllers
// write it; the stand-in only plays the kubelet).

const soon = (ms = 30_000) => Date.now() + ms

async function manifest(name: string): Promise<KubeObject[]> {
  const file = path.join(repoRoot, 'test/harness/manifests', name)
  return parseManifests(await readFile(file, 'utf8'), file)
}

/** A Deployment as a test applies it; `revision` changes the template (a new generation). */
function deployment(namespace: string, name: string, replicas = 1, revision = '1'): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name, tier: 'test' }, annotations: { revision } },
          spec: {
            containers: [
              {
                name: 'main',
                image: `registry.local:5000/${name}@sha256:${'ab'.repeat(32)}`,
              },
            ],
          },
        },
      },
    },
  ]
}

const stuck: Stall = {
  reason: 'ImagePullBackOff',
  message: 'Back-off pulling image "registry.local:5000/stuck": not found',
}

const isAvailable = (d: V1Deployment | undefined) =>
  d !== undefined &&
  d.status?.observedGeneration === d.metadata?.generation &&
  conditionOf(d, 'Available')?.status === 'True'

async function waitAvailable(kube: Kube, namespace: string, name: string): Promise<V1Deployment> {
  const [d] = await waitFor<V1Deployment>(
    kube,
    { apiVersion: 'apps/v1', kind: 'Deployment', namespace, name },
    ([found]) => isAvailable(found),
    { deadline: soon(), what: `Deployment ${namespace}/${name} to be Available` },
  )
  return d!
}

/** Waits until the Deployment has observed its generation and reports Available=False. */
async function waitUnavailable(kube: Kube, namespace: string, name: string): Promise<V1Deployment> {
  const [d] = await waitFor<V1Deployment>(
    kube,
    { apiVersion: 'apps/v1', kind: 'Deployment', namespace, name },
    ([found]) =>
      found?.status?.observedGeneration === found?.metadata?.generation &&
      conditionOf(found, 'Available')?.status === 'False',
    { deadline: soon(), what: `Deployment ${namespace}/${name} to report Available=False` },
  )
  return d!
}

async function waitForPods(
  kube: Kube,
  namespace: string,
  app: string,
  done: (pods: V1Pod[]) => boolean,
  what: string,
): Promise<V1Pod[]> {
  const pods = await waitFor<V1Pod>(
    kube,
    { apiVersion: 'v1', kind: 'Pod', namespace },
    (all) => done(all.filter((p) => p.metadata?.labels?.app === app)),
    { deadline: soon(), what },
  )
  return pods.filter((p) => p.metadata?.labels?.app === app)
}

const waitingReason = (pod: V1Pod) => pod.status?.containerStatuses?.[0]?.state?.waiting?.reason

/** What a wait's diagnostics would show: the stall on the Pod and a kubelet Event about it. */
async function expectStallVisible(kube: Kube, namespace: string, app: string): Promise<void> {
  const [pod] = await waitForPods(
    kube,
    namespace,
    app,
    (pods) => pods.length > 0 && pods.every((p) => waitingReason(p) === stuck.reason),
    `the pods of ${app} to wait with ${stuck.reason}`,
  )
  expect(pod!.status?.phase).toBe('Pending')
  expect(pod!.status?.containerStatuses?.[0]?.state?.waiting).toEqual({
    reason: stuck.reason,
    message: stuck.message,
  })
  expect(conditionOf(pod, 'Ready')?.status).toBe('False')
  const events = await kube.core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${pod!.metadata?.name}`,
  })
  expect(events.items).toContainEqual(
    expect.objectContaining({
      type: 'Warning',
      reason: 'BackOff',
      message: stuck.message,
      source: expect.objectContaining({ component: 'kubelet' }),
    }),
  )
}

describe('deployment stand-in, without kube-controller-manager', () => {
  let cluster: TestKube
  let kube: Kube
  let standIn: DeploymentStandIn

  beforeAll(async () => {
    cluster = await startKube()
    kube = connect(cluster.kubeconfig)
    standIn = await startDeploymentStandIn(cluster.kubeconfig, {
      stall: (namespace) => (namespace === 'stalls' ? stuck : undefined),
    })
  }, 120_000)

  afterAll(async () => {
    await standIn?.stop()
    await cluster?.stop()
  })

  it('applies the Pipelines and Chains release-shaped manifests; CRDs are Established', async () => {
    const objects = [
      ...(await manifest('tekton-pipelines-release.yaml')),
      ...(await manifest('tekton-chains-release.yaml')),
    ]
    await applyManifests(kube, objects, soon(60_000))

    const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition')
    expect(crds.map((c) => c.metadata.name).sort()).toEqual([
      'customruns.tekton.dev',
      'pipelineruns.tekton.dev',
      'pipelines.tekton.dev',
      'stepactions.tekton.dev',
      'taskruns.tekton.dev',
      'tasks.tekton.dev',
    ])
    for (const crd of crds) {
      const live = await kube.objects.read(crd)
      expect(conditionOf(live, 'Established')?.status, crd.metadata.name).toBe('True')
    }
    // The served versions answer: v1 for Tasks, v1beta1 too (as in the release). Just after
    // a CRD is Established its storage may still answer 429 "(re)initializing": retried.
    for (const apiVersion of ['tekton.dev/v1', 'tekton.dev/v1beta1']) {
      const tasks = await withRetry(
        () => kube.objects.list(apiVersion, 'Task', 'default'),
        soon(),
        'listing Tasks',
        () => undefined,
      )
      expect(tasks.items).toEqual([])
    }

    // Shipped empty, as the real Chains release does: the action has to fill them.
    const secret = await kube.core.readNamespacedSecret({
      name: 'signing-secrets',
      namespace: 'tekton-chains',
    })
    expect(secret.type).toBe('Opaque')
    expect(secret.data).toBeUndefined()
    const config = await kube.core.readNamespacedConfigMap({
      name: 'chains-config',
      namespace: 'tekton-chains',
    })
    expect(config.data).toBeUndefined()
    const info = await kube.core.readNamespacedConfigMap({
      name: 'pipelines-info',
      namespace: 'tekton-pipelines',
    })
    expect(info.data?.version).toBe('v1.15.0')
  })

  it('makes every release Deployment Available, with the status the controller writes', async () => {
    const expected = [
      'tekton-chains/tekton-chains-controller',
      'tekton-pipelines-resolvers/tekton-pipelines-remote-resolvers',
      'tekton-pipelines/tekton-events-controller',
      'tekton-pipelines/tekton-pipelines-controller',
      'tekton-pipelines/tekton-pipelines-webhook',
    ]
    for (const key of expected) {
      const [namespace = '', name = ''] = key.split('/')
      const d = await waitAvailable(kube, namespace, name)
      expect(d.status).toMatchObject({
        observedGeneration: d.metadata?.generation,
        replicas: 1,
        updatedReplicas: 1,
        readyReplicas: 1,
        availableReplicas: 1,
      })
      expect(conditionOf(d, 'Available')).toMatchObject({ reason: 'MinimumReplicasAvailable' })
      expect(conditionOf(d, 'Progressing')).toMatchObject({
        status: 'True',
        reason: 'NewReplicaSetAvailable',
      })
    }
  })

  it('keeps a stalled Deployment unavailable, shows why on a Pod and an Event, until ready()', async () => {
    await applyManifests(kube, deployment('stalls', 'stuck', 2), soon())
    const d = await waitUnavailable(kube, 'stalls', 'stuck')
    expect(conditionOf(d, 'Available')?.reason).toBe('MinimumReplicasUnavailable')
    expect(d.status).toMatchObject({ replicas: 2, unavailableReplicas: 2 })
    expect(d.status?.availableReplicas).toBeUndefined()
    await expectStallVisible(kube, 'stalls', 'stuck')

    // It stays so: a wait for Available runs out of time.
    await expect(
      waitFor<V1Deployment>(
        kube,
        { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'stalls', name: 'stuck' },
        ([found]) => isAvailable(found),
        { deadline: Date.now() + 1_500, what: 'Deployment stalls/stuck to be Available' },
      ),
    ).rejects.toThrow(WaitTimeoutError)

    await standIn.ready('stalls', 'stuck')
    const released = await waitAvailable(kube, 'stalls', 'stuck')
    expect(released.status).toMatchObject({ readyReplicas: 2, availableReplicas: 2 })
    expect(released.status?.unavailableReplicas).toBeUndefined()
    const [pod] = await waitForPods(
      kube,
      'stalls',
      'stuck',
      (pods) => pods.length > 0 && pods.every((p) => p.status?.phase === 'Running'),
      'the stand-in pod of stalls/stuck to run',
    )
    expect(conditionOf(pod, 'Ready')?.status).toBe('True')
  })

  it('marks a re-applied Deployment (new generation) Available again', async () => {
    await applyManifests(kube, deployment('rollouts', 'web'), soon())
    const first = await waitAvailable(kube, 'rollouts', 'web')
    await applyManifests(kube, deployment('rollouts', 'web', 1, '2'), soon())
    const second = await waitAvailable(kube, 'rollouts', 'web')
    expect(second.metadata?.generation).toBe((first.metadata?.generation ?? 0) + 1)
    expect(second.status?.observedGeneration).toBe(second.metadata?.generation)
  })
})

describe('deployment stand-in, with kube-controller-manager (plays the kubelet)', () => {
  let cluster: TestKube
  let kube: Kube
  let standIn: DeploymentStandIn

  beforeAll(async () => {
    cluster = await startKube({ controllerManager: true })
    kube = connect(cluster.kubeconfig)
    standIn = await startDeploymentStandIn(cluster.kubeconfig, {
      controllerManager: true,
      stall: (namespace) => (namespace === 'stalls' ? stuck : undefined),
    })
  }, 120_000)

  afterAll(async () => {
    await standIn?.stop()
    await cluster?.stop()
  })

  it('readies the real ReplicaSet pods, so the real controller reports Available', async () => {
    await applyManifests(kube, deployment('kubelet', 'web', 2), soon())
    const d = await waitAvailable(kube, 'kubelet', 'web')
    expect(d.status).toMatchObject({ readyReplicas: 2, availableReplicas: 2 })
    expect(conditionOf(d, 'Progressing')?.reason).toBe('NewReplicaSetAvailable')

    const replicaSets = await kube.apps.listNamespacedReplicaSet({ namespace: 'kubelet' })
    const rs = replicaSets.items.find((r: V1ReplicaSet) => r.status?.replicas === 2)
    expect(rs?.status).toMatchObject({ readyReplicas: 2, availableReplicas: 2 })
    const pods = await kube.core.listNamespacedPod({ namespace: 'kubelet' })
    expect(pods.items).toHaveLength(2)
    for (const pod of pods.items) {
      // Made by the ReplicaSet controller, not by the stand-in.
      expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'ReplicaSet' })
      expect(pod.status?.phase).toBe('Running')
      expect(pod.status?.containerStatuses?.[0]?.ready).toBe(true)
    }

    // A new generation rolls out through a new ReplicaSet, whose pods become ready too.
    await applyManifests(kube, deployment('kubelet', 'web', 2, '2'), soon())
    const second = await waitAvailable(kube, 'kubelet', 'web')
    expect(second.metadata?.generation).toBe((d.metadata?.generation ?? 0) + 1)
    await waitFor<V1ReplicaSet>(
      kube,
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', namespace: 'kubelet' },
      (sets) => sets.filter((r) => (r.status?.availableReplicas ?? 0) > 0).length === 1,
      { deadline: soon(), what: 'the old ReplicaSet of kubelet/web to be scaled down' },
    )
  })

  it('leaves a stalled Deployment unavailable with the reason on its real Pod, until ready()', async () => {
    await applyManifests(kube, deployment('stalls', 'stuck'), soon())
    const d = await waitUnavailable(kube, 'stalls', 'stuck')
    // Written by the real deployment controller.
    expect(conditionOf(d, 'Available')?.reason).toBe('MinimumReplicasUnavailable')
    await expectStallVisible(kube, 'stalls', 'stuck')
    const pods = await kube.core.listNamespacedPod({ namespace: 'stalls' })
    expect(pods.items[0]?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'ReplicaSet' })

    await standIn.ready('stalls', 'stuck')
    await waitAvailable(kube, 'stalls', 'stuck')
  })
})
