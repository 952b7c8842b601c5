import { ApiException, type V1Pod } from '@kubernetes/client-node'
import http, { type IncomingMessage } from 'node:http'
import https from 'node:https'
import { setTimeout as delay } from 'node:timers/promises'
import { statusOf, type Kube } from './client.js'

export interface FollowLogOptions {
  namespace: string
  pod: string
  container: string
  /** Called once per line of the container's output, in order, never twice for the same line. */
  onLine(line: string): void
  /**
   * Whether the container has finished (so a stream that ends was complete);
   * false means a stream that ended was cut off and is opened again.
   */
  isFinished(): Promise<boolean>
  /** Aborted when the caller knows the run is over: one last read, then stop. */
  stop: AbortSignal
}

/** A line as the kubelet sends it with `timestamps=true`: RFC 3339 (nanoseconds), a space, the text. */
const STAMPED = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z (.*)$/s

/** Nanoseconds since the epoch of a kubelet timestamp. */
function nanos(seconds: string, fraction = ''): bigint {
  return BigInt(Date.parse(`${seconds}Z`)) * 1_000_000n + BigInt(fraction.padEnd(9, '0'))
}

/**
 * Follows a container's log through the API server (`follow=true`) and hands
 * each line to `onLine`. A stream that ends before
 * the container has finished (kubelet restart, API server or network cut) is
 * reopened with `sinceTime`; as the API server keeps only whole seconds of
 * `sinceTime`, lines are read with timestamps and those at or before the last
 * one seen are dropped, so nothing is repeated and nothing is lost.
 */
export async function followContainerLog(kube: Kube, options: FollowLogOptions): Promise<void> {
  let lastNs = -1n
  /** Lines seen with exactly the last timestamp (a runtime may stamp two lines alike). */
  let atLast = 0
  let pause = 100
  for (;;) {
    // Decided before the request: a stream opened after the container finished
    // holds everything, so it is the last one.
    const last = options.stop.aborted || (await options.isFinished())
    let fresh = 0
    const started = Date.now()
    try {
      const resumeNs = lastNs
      let skip = atLast
      await readOnce(kube, options, !last, resumeNs >= 0n ? resumeNs : undefined, (ns, text) => {
        if (ns < resumeNs) return
        // Lines stamped exactly like the last one seen were delivered already.
        if (ns === resumeNs && skip > 0) {
          skip--
          return
        }
        if (ns === lastNs) atLast++
        else {
          lastNs = ns
          atLast = 1
        }
        fresh++
        options.onLine(text)
      })
    } catch (err) {
      // 400 while the container is still waiting to start, 404 before the pod exists.
      if (last && statusOf(err) !== 400) return
    }
    if (last) return
    // Reconnect at once after a stream that delivered; back off when it did not
    // (the container is starting, or has ended and the pod status is not yet written).
    pause = fresh > 0 || Date.now() - started > 5_000 ? 100 : Math.min(pause * 2, 2_000)
    await delay(pause, undefined, { signal: options.stop }).catch(() => undefined)
  }
}

/**
 * One log request; resolves when its stream ends (or `stop` aborts it while
 * following). Lines are handed over with their timestamp in nanoseconds.
 */
async function readOnce(
  kube: Kube,
  options: FollowLogOptions,
  follow: boolean,
  sinceNs: bigint | undefined,
  onLine: (ns: bigint, text: string) => void,
): Promise<void> {
  const deliver = (line: string) => {
    const match = STAMPED.exec(line)
    if (match) onLine(nanos(match[1]!, match[2]), match[3]!)
  }
  const sinceTime =
    sinceNs === undefined
      ? undefined
      : new Date(Number(sinceNs / 1_000_000n)).toISOString().replace(/\.\d+Z$/, 'Z')
  const controller = new AbortController()
  const stop = () => controller.abort()
  if (follow) {
    if (options.stop.aborted) return
    options.stop.addEventListener('abort', stop, { once: true })
  }
  try {
    const response = await requestLog(kube, options, { follow, sinceTime }, controller.signal)
    let pending = ''
    for await (const chunk of response) {
      pending += (chunk as Buffer).toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) deliver(line)
    }
    if (pending) deliver(pending)
  } catch (err) {
    // Stopped while following: what came before is delivered.
    if (controller.signal.aborted) return
    throw err
  } finally {
    options.stop.removeEventListener('abort', stop)
  }
}

/**
 * `GET .../pods/<pod>/log` with timestamps, over node:https with the
 * kubeconfig's TLS settings and credentials. Not client-node's `Log`: it pipes
 * the response into the caller's stream without an error handler, so aborting
 * a stream that is still open (a stop while the kubelet keeps it open) throws
 * an uncaught AbortError. Resolves with the response once it is 200; any other
 * status is an ApiException, as from the generated clients.
 */
async function requestLog(
  kube: Kube,
  target: Pick<FollowLogOptions, 'namespace' | 'pod' | 'container'>,
  query: { follow: boolean; sinceTime?: string },
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const server = kube.config.getCurrentCluster()?.server
  if (!server) throw new Error('the kubeconfig has no current cluster')
  const url = new URL(
    `${server.replace(/\/$/, '')}/api/v1/namespaces/${target.namespace}/pods/${target.pod}/log`,
  )
  url.searchParams.set('container', target.container)
  url.searchParams.set('follow', String(query.follow))
  url.searchParams.set('timestamps', 'true')
  if (query.sinceTime) url.searchParams.set('sinceTime', query.sinceTime)
  const options: https.RequestOptions = { method: 'GET', headers: {} }
  await kube.config.applyToHTTPSOptions(options)
  const send = url.protocol === 'http:' ? http.request : https.request
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const request = send(url, { ...options, signal }, resolve)
    request.once('error', reject)
    request.end()
  })
  if (response.statusCode === 200) return response
  let body = ''
  for await (const chunk of response) body += (chunk as Buffer).toString('utf8')
  throw new ApiException(response.statusCode ?? 0, 'log request failed', body, {})
}

/** Whether a container of a pod has terminated (or the pod is gone or over). */
export async function containerFinished(
  kube: Kube,
  namespace: string,
  pod: string,
  container: string,
): Promise<boolean> {
  let found: V1Pod
  try {
    found = await kube.core.readNamespacedPod({ name: pod, namespace })
  } catch (err) {
    if (statusOf(err) === 404) return true
    return false
  }
  if (found.status?.phase === 'Succeeded' || found.status?.phase === 'Failed') return true
  const status = found.status?.containerStatuses?.find((c) => c.name === container)
  return status?.state?.terminated !== undefined
}

/**
 * Calls `onPod` for every pod matching `labelSelector` in `namespace`, as it
 * appears or changes (a list, then a watch from its resourceVersion, again
 * when the server closes it), until `stop` aborts.
 */
export async function watchPods(
  kube: Kube,
  namespace: string,
  labelSelector: string,
  onPod: (pod: V1Pod) => void,
  stop: AbortSignal,
): Promise<void> {
  let pause = 100
  while (!stop.aborted) {
    let resourceVersion: string | undefined
    try {
      const list = await kube.core.listNamespacedPod({ namespace, labelSelector })
      for (const pod of list.items) onPod(pod)
      resourceVersion = list.metadata?.resourceVersion
    } catch {
      await delay(pause, undefined, { signal: stop }).catch(() => undefined)
      pause = Math.min(pause * 2, 2_000)
      continue
    }
    const started = Date.now()
    await new Promise<void>((resolve) => {
      let controller: AbortController | undefined
      const finish = () => {
        stop.removeEventListener('abort', finish)
        controller?.abort()
        resolve()
      }
      stop.addEventListener('abort', finish, { once: true })
      kube.watch
        .watch(
          `/api/v1/namespaces/${namespace}/pods`,
          { labelSelector, resourceVersion, allowWatchBookmarks: true },
          (type: string, pod: V1Pod) => {
            if (type === 'ADDED' || type === 'MODIFIED') onPod(pod)
            if (type === 'ERROR') finish()
          },
          () => finish(),
        )
        .then((c) => {
          controller = c
          if (stop.aborted) c.abort()
        })
        .catch(() => finish())
    })
    // A watch that closes at once (server restarting) is retried with growing pauses.
    pause = Date.now() - started < 1_000 ? Math.min(pause * 2, 2_000) : 100
    if (!stop.aborted && pause > 100) {
      await delay(pause, undefined, { signal: stop }).catch(() => undefined)
    }
  }
}
