/**
 * Small helpers for tests that run pods on the node cluster, over the API
 * server only (as the action does): create, watch until a phase, read logs.
 */
import { waitFor } from '../../../src/kube/wait.js'
import type { NodeCluster } from './cluster.js'

export interface Pod {
  metadata: { name: string; namespace?: string; uid?: string }
  spec?: unknown
  status?: {
    phase?: string
    podIP?: string
    hostIP?: string
    conditions?: { type: string; status: string }[]
    containerStatuses?: {
      name: string
      imageID?: string
      ready?: boolean
      state?: Record<string, { reason?: string; message?: string; exitCode?: number }>
    }[]
  }
}

/** A request that must succeed (2xx); the answer's body. */
export async function apiCall<T = unknown>(
  cluster: NodeCluster,
  method: string,
  apiPath: string,
  body?: unknown,
): Promise<T> {
  const res = await cluster.kube.request(method, apiPath, body)
  if (res.status < 200 || res.status > 299) {
    throw new Error(`${method} ${apiPath}: HTTP ${res.status} ${res.text.slice(0, 1000)}`)
  }
  return res.body as T
}

/** Creates a namespace and waits for its `default` ServiceAccount, which pods need. */
export async function createNamespace(
  cluster: NodeCluster,
  name: string,
  deadline: number,
): Promise<void> {
  await apiCall(cluster, 'POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name },
  })
  await waitFor(
    cluster.client,
    { apiVersion: 'v1', kind: 'ServiceAccount', namespace: name, name: 'default' },
    (accounts) => accounts.length > 0,
    { deadline, what: `ServiceAccount ${name}/default` },
  )
}

/** What happened to the pods of a namespace, for failure messages. */
async function eventsOf(cluster: NodeCluster, namespace: string): Promise<string> {
  const res = await cluster.kube.request('GET', `/api/v1/namespaces/${namespace}/events`)
  const items = (
    res.body as {
      items?: { involvedObject?: { name?: string }; reason?: string; message?: string }[]
    }
  ).items
  return (items ?? []).map((e) => `${e.involvedObject?.name}: ${e.reason}: ${e.message}`).join('\n')
}

/** Watches a pod until `done` holds; fails at the deadline with its status and the namespace's events. */
export async function waitForPod(
  cluster: NodeCluster,
  namespace: string,
  name: string,
  done: (pod: Pod) => boolean,
  what: string,
  deadline: number,
): Promise<Pod> {
  const [pod] = await waitFor<Pod>(
    cluster.client,
    { apiVersion: 'v1', kind: 'Pod', namespace, name },
    (pods) => pods.some(done),
    {
      deadline,
      what: `pod ${namespace}/${name} ${what}`,
      diagnose: async (pods) =>
        `${JSON.stringify(pods.map((p) => p.status))}\nevents:\n${await eventsOf(cluster, namespace)}`,
    },
  )
  return pod!
}

/** The container's log, read through the API server (which reads it from the kubelet). */
export async function podLog(
  cluster: NodeCluster,
  namespace: string,
  name: string,
): Promise<string> {
  const res = await cluster.kube.request('GET', `/api/v1/namespaces/${namespace}/pods/${name}/log`)
  if (res.status !== 200)
    throw new Error(`log of ${namespace}/${name}: HTTP ${res.status} ${res.text}`)
  return res.text
}

const finished = (pod: Pod): boolean =>
  pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed'

/** Waiting reasons that do not go away by waiting longer. */
const STUCK = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
])
/** Why a pod's container is stuck, if it is. */
function stuck(pod: Pod): string | undefined {
  for (const status of pod.status?.containerStatuses ?? []) {
    const waiting = status.state?.waiting
    if (waiting?.reason && STUCK.has(waiting.reason)) {
      return `${status.name}: ${waiting.reason}: ${waiting.message ?? ''}`
    }
  }
  return undefined
}

/**
 * Creates a pod (restartPolicy Never), waits until it has finished, and
 * returns it with its log; a pod that failed throws with its log.
 */
export async function runPod(
  cluster: NodeCluster,
  pod: Pod & { spec: Record<string, unknown> },
  deadline: number,
): Promise<{ pod: Pod; log: string }> {
  const namespace = pod.metadata.namespace!
  await apiCall(cluster, 'POST', `/api/v1/namespaces/${namespace}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    ...pod,
    spec: { restartPolicy: 'Never', ...pod.spec },
  })
  const done = await waitForPod(
    cluster,
    namespace,
    pod.metadata.name,
    (p) => finished(p) || stuck(p) !== undefined,
    'to finish',
    deadline,
  )
  const why = stuck(done)
  if (why) throw new Error(`pod ${namespace}/${pod.metadata.name} cannot start: ${why}`)
  const log = await podLog(cluster, namespace, pod.metadata.name)
  if (done.status?.phase !== 'Succeeded') {
    throw new Error(
      `pod ${namespace}/${pod.metadata.name} ${done.status?.phase}: ${JSON.stringify(done.status?.containerStatuses)}\n--- its log ---\n${log}`,
    )
  }
  return { pod: done, log }
}
