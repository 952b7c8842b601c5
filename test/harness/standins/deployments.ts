/**
 * Stand-in for what makes a Deployment Available on a real cluster: nodes
 * running its pods' containers. The real node (test/node/) makes Tekton's
 * Deployments Available for real; this stays for the Tekton phase's fault
 * tests, which need a Deployment whose pods never get ready on demand. It
 * plays that part, after a configurable start-up delay, for every Deployment
 * in every namespace:
 *
 * - Without kube-controller-manager (the default), nobody creates ReplicaSets
 *   or Pods; the stand-in writes the Deployment's status as the deployment
 *   controller would once the pods are ready (Available=True
 *   MinimumReplicasAvailable, Progressing=True NewReplicaSetAvailable).
 * - With kube-controller-manager (`controllerManager: true`), the real
 *   controllers create ReplicaSets and Pods and write the Deployment's status;
 *   the stand-in plays the kubelet and only writes the Pods' status (Running
 *   and Ready). Writing the Deployment's status there would fight the real
 *   deployment controller.
 *
 * A Deployment chosen by `stall` does not become Available: its Pod (created
 * here for the purpose, or the real one) shows the container waiting with the
 * given reason, an Event records it as the kubelet would, and the Deployment
 * reports Available=False MinimumReplicasUnavailable. `ready()` releases it.
 * A new generation (a re-apply that changes the template) starts over.
 */
import {
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubernetesObject,
  type V1Deployment,
  type V1Pod,
  type V1ReplicaSet,
} from '@kubernetes/client-node'
import { createHash } from 'node:crypto'
import { apiMessage, connect, statusOf, type Kube } from '../../../src/kube/client.js'
import { watchAll } from './watch.js'

/** A container problem, as the kubelet reports it in a waiting state. */
export interface Stall {
  reason:
    | 'ImagePullBackOff'
    | 'ErrImagePull'
    | 'CrashLoopBackOff'
    | 'CreateContainerConfigError'
    | (string & {})
  message: string
}

export interface DeploymentStandInOptions {
  /** Simulated start-up time of each Deployment's pods, in ms (default 200). */
  delayMs?: number
  /** Which Deployments never become ready (until `ready()`), and why. */
  stall?: (namespace: string, name: string) => Stall | undefined
  /** kube-controller-manager runs (startKube's option of the same name): play the kubelet only. */
  controllerManager?: boolean
  /** Where problems in the background are reported. */
  log?: (message: string) => void
}

export interface DeploymentStandIn {
  /** Releases a stalled Deployment: its pods become ready now. */
  ready(namespace: string, name: string): Promise<void>
  stop(): Promise<void>
}

/** Label on the Pods the stand-in creates itself (value: the Deployment's name). */
export const STAND_IN_POD_LABEL = 'oml-chains.test/stand-in-for'

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

/** RFC 3339 without fractions, as Kubernetes writes times. */
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

export async function startDeploymentStandIn(
  kubeconfig: string,
  options: DeploymentStandInOptions = {},
): Promise<DeploymentStandIn> {
  const kube = connect(kubeconfig, 'deployment stand-in kubeconfig')
  const context: Context = {
    kube,
    delayMs: options.delayMs ?? 200,
    log: options.log ?? ((message) => console.error(`deployment stand-in: ${message}`)),
    released: new Set(),
    stall(namespace, name) {
      if (this.released.has(`${namespace}/${name}`)) return undefined
      return options.stall?.(namespace, name)
    },
  }
  return options.controllerManager ? playKubelet(context) : playDeploymentController(context)
}

interface Context {
  kube: Kube
  delayMs: number
  log: (message: string) => void
  /** `namespace/name` of Deployments `ready()` released. */
  released: Set<string>
  stall(namespace: string, name: string): Stall | undefined
}

/**
 * Timers and in-flight work of one stand-in, by key: one pending settle per
 * key, settles of one key one after the other (the last decision is the one
 * written), retried after a failure, awaited by `stop()` so nothing writes
 * after it.
 */
function scheduler(context: Context, settle: (key: string) => Promise<void>) {
  const timers = new Map<string, NodeJS.Timeout>()
  const running = new Map<string, Promise<void>>()
  let stopped = false
  const run = (key: string): Promise<void> => {
    clearTimeout(timers.get(key))
    timers.delete(key)
    const work = (running.get(key) ?? Promise.resolve())
      .then(() => (stopped ? undefined : settle(key)))
      .catch((err: unknown) => {
        if (stopped) return
        context.log(`${key}: ${apiMessage(err)}; trying again`)
        later(key)
      })
    running.set(key, work)
    void work.finally(() => {
      if (running.get(key) === work) running.delete(key)
    })
    return work
  }
  const later = (key: string) => {
    if (stopped || timers.has(key)) return
    timers.set(
      key,
      setTimeout(() => void run(key), context.delayMs),
    )
  }
  return {
    later,
    /** Settles now, replacing a pending timer. */
    now: run,
    pending: (key: string) => timers.has(key),
    forget(key: string) {
      clearTimeout(timers.get(key))
      timers.delete(key)
    },
    async stop() {
      stopped = true
      for (const timer of timers.values()) clearTimeout(timer)
      timers.clear()
      await Promise.all(running.values())
    },
  }
}

// --- Without kube-controller-manager: the Deployment's status, written here ---

async function playDeploymentController(context: Context): Promise<DeploymentStandIn> {
  const { kube } = context
  /** What was last written per Deployment: `generation:outcome`. */
  const written = new Map<string, string>()
  const outcome = (d: V1Deployment) => {
    const stall = context.stall(d.metadata?.namespace ?? '', d.metadata?.name ?? '')
    return `${d.metadata?.generation ?? 0}:${stall ? stall.reason : 'available'}`
  }

  /** The latest of each Deployment, from the watch. */
  const latest = new Map<string, V1Deployment>()
  const work = scheduler(context, async (key) => {
    const d = latest.get(key)
    if (!d) return
    // Recorded before writing: the watch event of our own write must not schedule another.
    written.set(key, outcome(d))
    try {
      await settleDeployment(context, d)
    } catch (err) {
      written.delete(key)
      throw err
    }
  })

  const deployments = await watchAll<V1Deployment>(kube, 'apps/v1', 'Deployment', (type, d) => {
    const key = keyOf(d)
    if (type === 'delete') {
      work.forget(key)
      written.delete(key)
      latest.delete(key)
      // No garbage collector without kube-controller-manager: our Pods go with their Deployment.
      void kube.core
        .deleteCollectionNamespacedPod({
          namespace: d.metadata?.namespace ?? '',
          labelSelector: `${STAND_IN_POD_LABEL}=${d.metadata?.name ?? ''}`,
        })
        .catch(() => undefined)
      return
    }
    latest.set(key, d)
    if (written.get(key) === outcome(d) || work.pending(key)) return
    work.later(key)
  })

  return {
    async ready(namespace, name) {
      context.released.add(`${namespace}/${name}`)
      await work.now(`${namespace}/${name}`)
    },
    async stop() {
      await deployments.stop()
      await work.stop()
    },
  }
}

async function settleDeployment(context: Context, d: V1Deployment): Promise<void> {
  const { kube } = context
  const namespace = d.metadata?.namespace ?? ''
  const name = d.metadata?.name ?? ''
  const hash = templateHash(d)
  const replicas = d.spec?.replicas ?? 1
  const stall = context.stall(namespace, name)

  // Pods made for an older template are gone once the new one rolls out.
  const ours = await kube.core.listNamespacedPod({
    namespace,
    labelSelector: `${STAND_IN_POD_LABEL}=${name}`,
  })
  for (const pod of ours.items) {
    if (pod.metadata?.labels?.['pod-template-hash'] !== hash) {
      await kube.core
        .deleteNamespacedPod({ name: pod.metadata?.name ?? '', namespace })
        .catch(ignore404)
    }
  }
  const current = ours.items.find((p) => p.metadata?.labels?.['pod-template-hash'] === hash)

  if (stall) {
    // A Pod to show the problem on: diagnostics read pod facts and events.
    const pod = current ?? (await createPod(kube, d, hash))
    // The Event first: whoever sees the waiting status can find it.
    await recordEvent(kube, pod, stall)
    await writePodStatus(kube, pod, waitingStatus(pod, stall))
  } else if (current) {
    await writePodStatus(kube, current, runningStatus(current))
  }

  const previous = d.status?.conditions ?? []
  const condition = (type: string, status: 'True' | 'False', reason: string, message: string) => {
    const before = previous.find((c) => c.type === type)
    const stamp = now()
    return {
      type,
      status,
      reason,
      message,
      lastUpdateTime: stamp,
      // Kept while the status stays the same, as the controller does.
      lastTransitionTime:
        before?.status === status && before.lastTransitionTime
          ? new Date(before.lastTransitionTime).toISOString().replace(/\.\d+Z$/, 'Z')
          : stamp,
    }
  }
  const replicaSet = `${name}-${hash}`
  // The controller omits zero counts; null removes them in a merge patch.
  const count = (n: number) => (n > 0 ? n : null)
  const status = stall
    ? {
        observedGeneration: d.metadata?.generation,
        replicas: count(replicas),
        updatedReplicas: count(replicas),
        readyReplicas: null,
        availableReplicas: null,
        unavailableReplicas: count(replicas),
        conditions: [
          condition(
            'Available',
            'False',
            'MinimumReplicasUnavailable',
            'Deployment does not have minimum availability.',
          ),
          condition(
            'Progressing',
            'True',
            'ReplicaSetUpdated',
            `ReplicaSet "${replicaSet}" is progressing.`,
          ),
        ],
      }
    : {
        observedGeneration: d.metadata?.generation,
        replicas: count(replicas),
        updatedReplicas: count(replicas),
        readyReplicas: count(replicas),
        availableReplicas: count(replicas),
        unavailableReplicas: null,
        conditions: [
          condition(
            'Available',
            'True',
            'MinimumReplicasAvailable',
            'Deployment has minimum availability.',
          ),
          condition(
            'Progressing',
            'True',
            'NewReplicaSetAvailable',
            `ReplicaSet "${replicaSet}" has successfully progressed.`,
          ),
        ],
      }
  await kube.apps.patchNamespacedDeploymentStatus({ name, namespace, body: { status } }, mergePatch)
}

/** A Pod as the Deployment's ReplicaSet would make it (labels and spec from the template). */
async function createPod(kube: Kube, d: V1Deployment, hash: string): Promise<V1Pod> {
  const namespace = d.metadata?.namespace ?? ''
  const name = d.metadata?.name ?? ''
  const template = d.spec?.template
  const body: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${name}-${hash}-${hash.slice(0, 5)}`,
      namespace,
      labels: {
        ...template?.metadata?.labels,
        'pod-template-hash': hash,
        [STAND_IN_POD_LABEL]: name,
      },
      annotations: template?.metadata?.annotations,
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'Deployment', name, uid: d.metadata?.uid ?? '' },
      ],
    },
    spec: template?.spec ?? { containers: [] },
  }
  try {
    return await kube.core.createNamespacedPod({ namespace, body })
  } catch (err) {
    if (statusOf(err) !== 409) throw err
    return kube.core.readNamespacedPod({ name: body.metadata?.name ?? '', namespace })
  }
}

// --- With kube-controller-manager: the kubelet's part, Pod status only ---

async function playKubelet(context: Context): Promise<DeploymentStandIn> {
  const { kube } = context
  /** Pod uid → its Deployment (`namespace/name`), once known. */
  const owners = new Map<string, string>()
  /** Pod uid → what was last written (`ready` or the stall reason). */
  const written = new Map<string, string>()
  const outcome = (deployment: string) => {
    const [namespace = '', name = ''] = deployment.split('/')
    return context.stall(namespace, name)?.reason ?? 'ready'
  }

  const replicaSets = await watchAll<V1ReplicaSet>(kube, 'apps/v1', 'ReplicaSet', () => {})
  /** The latest of each Pod, by uid, from the watch. */
  const latest = new Map<string, V1Pod>()

  const deploymentOf = async (pod: V1Pod): Promise<string | undefined> => {
    const namespace = pod.metadata?.namespace ?? ''
    const rsRef = pod.metadata?.ownerReferences?.find(
      (o) => o.controller && o.kind === 'ReplicaSet',
    )
    if (!rsRef) return undefined
    const rs =
      replicaSets.cache.get(rsRef.name, namespace) ??
      (await kube.apps.readNamespacedReplicaSet({ name: rsRef.name, namespace }).catch(ignore404))
    const dRef = rs?.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'Deployment')
    return dRef ? `${namespace}/${dRef.name}` : undefined
  }

  const work = scheduler(context, async (uid) => {
    const pod = latest.get(uid)
    if (!pod || pod.metadata?.deletionTimestamp) return
    const deployment = owners.get(uid) ?? (await deploymentOf(pod))
    // Only pods of Deployments: other pods (a TaskRun's, say) belong to other stand-ins.
    if (!deployment) {
      written.set(uid, 'not ours')
      return
    }
    owners.set(uid, deployment)
    const [dNamespace = '', dName = ''] = deployment.split('/')
    const stall = context.stall(dNamespace, dName)
    written.set(uid, stall?.reason ?? 'ready')
    try {
      if (stall) {
        // The Event first: whoever sees the waiting status can find it.
        await recordEvent(kube, pod, stall)
        await writePodStatus(kube, pod, waitingStatus(pod, stall))
      } else {
        await writePodStatus(kube, pod, runningStatus(pod))
      }
    } catch (err) {
      written.delete(uid)
      throw err
    }
  })

  const pods = await watchAll<V1Pod>(kube, 'v1', 'Pod', (type, pod) => {
    const uid = pod.metadata?.uid ?? ''
    if (type === 'delete') {
      work.forget(uid)
      for (const map of [owners, written, latest]) map.delete(uid)
      return
    }
    latest.set(uid, pod)
    if (pod.metadata?.deletionTimestamp) return
    const last = written.get(uid)
    const owner = owners.get(uid)
    if (last === 'not ours' || (owner && last === outcome(owner)) || work.pending(uid)) return
    work.later(uid)
  })

  return {
    async ready(namespace, name) {
      const deployment = `${namespace}/${name}`
      context.released.add(deployment)
      // Pods whose owner is not known yet are decided when their timer fires.
      const settled = [...owners].filter(([, d]) => d === deployment).map(([uid]) => work.now(uid))
      await Promise.all(settled)
    },
    async stop() {
      await pods.stop()
      await replicaSets.stop()
      await work.stop()
    },
  }
}

// --- Shared: pod status and events, as the kubelet writes them ---

function runningStatus(pod: V1Pod) {
  const stamp = now()
  const containers = pod.spec?.containers ?? []
  return {
    phase: 'Running',
    startTime: pod.status?.startTime ?? stamp,
    conditions: [
      { type: 'PodReadyToStartContainers', status: 'True', lastTransitionTime: stamp },
      { type: 'Initialized', status: 'True', lastTransitionTime: stamp },
      { type: 'Ready', status: 'True', lastTransitionTime: stamp },
      { type: 'ContainersReady', status: 'True', lastTransitionTime: stamp },
      { type: 'PodScheduled', status: 'True', lastTransitionTime: stamp },
    ],
    containerStatuses: containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: c.image?.includes('@') ? c.image : '',
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: stamp } },
    })),
  }
}

function waitingStatus(pod: V1Pod, stall: Stall) {
  const stamp = now()
  const containers = pod.spec?.containers ?? []
  // A crash loop has run (and failed) already; an image that cannot be pulled has not.
  const crashing = stall.reason === 'CrashLoopBackOff'
  const unready = `containers with unready status: [${containers.map((c) => c.name).join(' ')}]`
  return {
    phase: crashing ? 'Running' : 'Pending',
    startTime: pod.status?.startTime ?? stamp,
    conditions: [
      { type: 'PodReadyToStartContainers', status: 'True', lastTransitionTime: stamp },
      { type: 'Initialized', status: 'True', lastTransitionTime: stamp },
      {
        type: 'Ready',
        status: 'False',
        reason: 'ContainersNotReady',
        message: unready,
        lastTransitionTime: stamp,
      },
      {
        type: 'ContainersReady',
        status: 'False',
        reason: 'ContainersNotReady',
        message: unready,
        lastTransitionTime: stamp,
      },
      { type: 'PodScheduled', status: 'True', lastTransitionTime: stamp },
    ],
    containerStatuses: containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: '',
      ready: false,
      started: false,
      restartCount: crashing ? 3 : 0,
      state: { waiting: { reason: stall.reason, message: stall.message } },
      lastState: crashing
        ? { terminated: { exitCode: 1, reason: 'Error', startedAt: stamp, finishedAt: stamp } }
        : {},
    })),
  }
}

async function writePodStatus(kube: Kube, pod: V1Pod, status: object): Promise<void> {
  await kube.core.patchNamespacedPodStatus(
    { name: pod.metadata?.name ?? '', namespace: pod.metadata?.namespace ?? '', body: { status } },
    mergePatch,
  )
}

/** The Warning the kubelet records on the Pod; one per pod, reason and message. */
async function recordEvent(kube: Kube, pod: V1Pod, stall: Stall): Promise<void> {
  const namespace = pod.metadata?.namespace ?? ''
  const podName = pod.metadata?.name ?? ''
  const reason = /BackOff$/.test(stall.reason) ? 'BackOff' : 'Failed'
  const id = createHash('sha256').update(`${reason}\n${stall.message}`).digest('hex').slice(0, 16)
  const stamp = new Date()
  const container = pod.spec?.containers?.[0]?.name
  const body: CoreV1Event = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${podName}.${id}`, namespace },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Pod',
      name: podName,
      namespace,
      uid: pod.metadata?.uid,
      ...(container && { fieldPath: `spec.containers{${container}}` }),
    },
    reason,
    message: stall.message,
    type: 'Warning',
    source: { component: 'kubelet' },
    reportingComponent: 'kubelet',
    reportingInstance: 'stand-in',
    firstTimestamp: stamp,
    lastTimestamp: stamp,
    count: 1,
  }
  await kube.core.createNamespacedEvent({ namespace, body }).catch((err: unknown) => {
    if (statusOf(err) !== 409) throw err
  })
}

function keyOf(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`
}

/** Stands in for the pod-template-hash the controller derives from the template. */
function templateHash(d: V1Deployment): string {
  return createHash('sha256')
    .update(canonical(d.spec?.template ?? {}))
    .digest('hex')
    .slice(0, 10)
}

/**
 * JSON with sorted keys and no undefined values: the same template hashes the
 * same whether it came from a list (client-node's typed objects) or a watch
 * event (plain JSON).
 */
function canonical(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString())
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

function ignore404(err: unknown): undefined {
  if (statusOf(err) === 404) return undefined
  throw err
}
