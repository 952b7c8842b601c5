import { Log, type V1Pod } from '@kubernetes/client-node'
import { Writable } from 'node:stream'
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
 * Follows a container's log through the API server (client-node's `Log`,
 * `follow=true`) and hands each line to `onLine`. A stream that ends before
 * the container has finished (kubelet restart, API server or network cut) is
 * reopened with `sinceTime`; as the API server keeps only whole seconds of
 * `sinceTime`, lines are read with timestamps and those at or before the last
 * one seen are dropped, so nothing is repeated and nothing is lost.
 */
export async function followContainerLog(kube: Kube, options: FollowLogOptions): Promise<void> {
  const logApi = new Log(kube.config)
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
      await readOnce(logApi, options, !last, resumeNs >= 0n ? resumeNs : undefined, (ns, text) => {
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
  logApi: Log,
  options: FollowLogOptions,
  follow: boolean,
  sinceNs: bigint | undefined,
  onLine: (ns: bigint, text: string) => void,
): Promise<void> {
  let pending = ''
  let ended!: () => void
  const done = new Promise<void>((resolve) => (ended = resolve))
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      pending += chunk.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) deliver(line)
      callback()
    },
    final(callback) {
      if (pending) deliver(pending)
      pending = ''
      callback()
      ended()
    },
  })
  const deliver = (line: string) => {
    const match = STAMPED.exec(line)
    if (match) onLine(nanos(match[1]!, match[2]), match[3]!)
  }
  const sinceTime =
    sinceNs === undefined
      ? undefined
      : new Date(Number(sinceNs / 1_000_000n)).toISOString().replace(/\.\d+Z$/, 'Z')
  // `log()` resolves once the response headers are in; a stop that comes
  // before then must not wait for them.
  let controller: AbortController | undefined
  const stop = () => {
    controller?.abort()
    ended()
  }
  if (follow) {
    if (options.stop.aborted) return
    options.stop.addEventListener('abort', stop, { once: true })
  }
  try {
    const request = logApi.log(options.namespace, options.pod, options.container, sink, {
      follow,
      timestamps: true,
      sinceTime,
    })
    const stopped = done.then(() => undefined)
    controller = await Promise.race([request, stopped])
    if (!controller) {
      // Stopped first: the request still open is aborted as soon as it can be.
      request.then(
        (c) => c.abort(),
        () => undefined,
      )
      return
    }
    if (options.stop.aborted && follow) controller.abort()
    await done
  } finally {
    options.stop.removeEventListener('abort', stop)
  }
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
