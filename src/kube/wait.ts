import { setTimeout as delay } from 'node:timers/promises'
import { UserError } from '../errors.js'
import { formatDuration } from '../duration.js'
import type { Kube } from './client.js'
import { withRetry } from './retry.js'

/** What to watch: every object of a kind in a namespace, or one of them by name. */
export interface WatchTarget {
  apiVersion: string
  kind: string
  namespace?: string
  name?: string
}

export interface WaitOptions<T> {
  /** Epoch ms after which the wait fails. */
  deadline: number
  /** What is awaited, for the timeout message: "Deployment tekton-pipelines/x to be Available". */
  what: string
  /** Extra facts for the timeout message (pod phases, events), given the objects seen last. */
  diagnose?: (last: T[]) => Promise<string>
}

/** A wait that ran out of time: says what it waited for and what it saw last. */
export class WaitTimeoutError extends UserError {
  override name = 'WaitTimeoutError'
}

/**
 * Waits until `done` holds for the objects of `target` (a list, then a watch
 * from the list's resourceVersion, so no change is missed; the watch is
 * re-established when the server closes it). No polling interval: every
 * change is looked at as it happens.
 */
export async function waitFor<T extends { metadata?: { name?: string } }>(
  kube: Kube,
  target: WatchTarget,
  done: (objects: T[]) => boolean,
  options: WaitOptions<T>,
): Promise<T[]> {
  const started = Date.now()
  const path = await collectionPath(kube, target, options.deadline)
  const fieldSelector = target.name ? `metadata.name=${target.name}` : undefined
  let seen = new Map<string, T>()
  let quickCloses = 0

  while (Date.now() < options.deadline) {
    const list = await withRetry(
      () =>
        kube.objects.list<T & { apiVersion?: string; kind: string; metadata: { name: string } }>(
          target.apiVersion,
          target.kind,
          target.namespace,
          undefined,
          undefined,
          undefined,
          fieldSelector,
        ),
      options.deadline,
      `listing ${describeTarget(target)}`,
    )
    seen = new Map(list.items.map((item) => [item.metadata?.name ?? '', item as T]))
    if (done([...seen.values()])) return [...seen.values()]

    const watchStarted = Date.now()
    const outcome = await watchUntil(kube, path, {
      resourceVersion: list.metadata?.resourceVersion,
      fieldSelector,
      deadline: options.deadline,
      onEvent(type, object: T) {
        const name = object.metadata?.name ?? ''
        if (type === 'DELETED') seen.delete(name)
        else if (type === 'ADDED' || type === 'MODIFIED') seen.set(name, object)
        return done([...seen.values()])
      },
    })
    if (outcome === 'done') return [...seen.values()]
    // 'closed': the server ended the watch (timeout, or an expired
    // resourceVersion); list again and go on. A watch that keeps failing at
    // once (server restarting) is retried with growing pauses, not in a spin.
    quickCloses = Date.now() - watchStarted < 1_000 ? quickCloses + 1 : 0
    if (quickCloses > 0) {
      await delay(
        Math.min(5_000, 100 * 2 ** quickCloses, Math.max(0, options.deadline - Date.now())),
      )
    }
  }
  const last = [...seen.values()]
  const facts = options.diagnose ? await options.diagnose(last).catch((e: Error) => e.message) : ''
  throw new WaitTimeoutError(
    `timed out after ${formatDuration(Date.now() - started)} waiting for ${options.what}` +
      (facts ? `; last seen: ${facts}` : last.length === 0 ? '; none exists' : ''),
  )
}

interface WatchRun<T> {
  resourceVersion?: string
  fieldSelector?: string
  deadline: number
  /** Returns true when the wait is over. */
  onEvent(type: string, object: T): boolean
}

/** One watch request; resolves 'done' when onEvent says so, 'closed' when it ends otherwise. */
async function watchUntil<T>(
  kube: Kube,
  path: string,
  run: WatchRun<T>,
): Promise<'done' | 'closed'> {
  const remainingSeconds = Math.max(1, Math.ceil((run.deadline - Date.now()) / 1000))
  // The server closes the watch at the deadline or after 5 minutes (the client
  // also drops one that stays silent for 30 s); either way the caller lists again.
  const timeoutSeconds = Math.min(remainingSeconds, 300)
  return new Promise((resolve) => {
    let controller: AbortController | undefined
    let finished = false
    const finish = (outcome: 'done' | 'closed') => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      controller?.abort()
      resolve(outcome)
    }
    const timer = setTimeout(() => finish('closed'), run.deadline - Date.now())
    kube.watch
      .watch(
        path,
        {
          resourceVersion: run.resourceVersion,
          fieldSelector: run.fieldSelector,
          allowWatchBookmarks: true,
          timeoutSeconds,
        },
        (type: string, object: T) => {
          if (type === 'ERROR' || type === 'BOOKMARK') {
            // An ERROR event (e.g. 410 Gone) ends this watch; the caller lists again.
            if (type === 'ERROR') finish('closed')
            return
          }
          if (run.onEvent(type, object)) finish('done')
        },
        () => finish('closed'),
      )
      .then((c) => {
        controller = c
        if (finished) c.abort()
      })
      .catch(() => finish('closed'))
  })
}

/** `PipelineRun oml-chains/x`, `Deployments in tekton-pipelines`: for the log. */
function describeTarget(target: WatchTarget): string {
  const where = target.namespace ? `${target.namespace}/` : ''
  if (target.name) return `${target.kind} ${where}${target.name}`
  return `${target.kind}s${target.namespace ? ` in ${target.namespace}` : ''}`
}

/** `/apis/<group>/<version>[/namespaces/<ns>]/<plural>`, from the server's discovery. */
async function collectionPath(kube: Kube, target: WatchTarget, deadline: number): Promise<string> {
  const resource = await withRetry(
    async () => {
      const found = await kube.objects.discover(target.apiVersion, target.kind)
      if (!found) throw new UserError(`the server has no ${target.kind} in ${target.apiVersion}`)
      return found
    },
    deadline,
    `looking up ${target.kind} (${target.apiVersion}) in the API's discovery`,
  )
  const base = target.apiVersion.includes('/')
    ? `/apis/${target.apiVersion}`
    : `/api/${target.apiVersion}`
  const scope = resource.namespaced && target.namespace ? `/namespaces/${target.namespace}` : ''
  return `${base}${scope}/${resource.name}`
}
