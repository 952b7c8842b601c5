/**
 * List+watch for the harness stand-ins (not a stand-in itself): client-node's
 * ListWatch lists, then watches from the list's resourceVersion, watches again
 * when the server closes the watch and lists again on 410 Gone. It gives up on
 * other errors (API server restarting, a dropped connection); here it is then
 * started again after a short pause, so a stand-in keeps working for as long
 * as the test runs.
 */
import {
  ListWatch,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node'
import type { Kube } from '../../../src/kube/client.js'

export type ChangeType = 'add' | 'update' | 'delete'

export interface Watched<T> {
  /** The objects as last seen, by namespace and name. */
  cache: ObjectCache<T>
  stop(): Promise<void>
}

/**
 * Watches every object of a kind (all namespaces) and calls `onChange` for
 * each change; resolves once the first list is in and the watch is open.
 */
export async function watchAll<T extends KubernetesObject>(
  kube: Kube,
  apiVersion: string,
  kind: string,
  onChange: (type: ChangeType, object: T) => void,
  onError: (err: unknown) => void = (err) => console.error(`stand-in watch of ${kind}:`, err),
): Promise<Watched<T>> {
  const resource = await kube.objects.discover(apiVersion, kind)
  if (!resource) throw new Error(`the API server has no ${kind} in ${apiVersion}`)
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
  const list = () =>
    kube.objects.list(apiVersion, kind) as unknown as Promise<KubernetesListObject<T>>
  const informer = new ListWatch<T>(`${base}/${resource.name}`, kube.watch, list, false)
  // Events flowing again: the next failure starts over with a short pause.
  const changed = (type: ChangeType) => (object: T) => {
    pause = 100
    onChange(type, object)
  }
  informer.on('add', changed('add'))
  informer.on('update', changed('update'))
  informer.on('delete', changed('delete'))

  let starting = true
  let firstError: unknown
  let stopped = false
  let retry: NodeJS.Timeout | undefined
  let pause = 100
  const restart = (err: unknown) => {
    if (stopped) return
    if (starting) {
      firstError ??= err
      return
    }
    onError(err)
    retry = setTimeout(() => {
      retry = undefined
      informer.start().catch(restart)
    }, pause)
    pause = Math.min(pause * 2, 2_000)
  }
  informer.on('error', restart)

  // A first start that fails is the caller's error, not something to retry quietly.
  await informer.start().catch((err: unknown) => (firstError ??= err))
  starting = false
  if (firstError !== undefined) {
    stopped = true
    await informer.stop()
    throw firstError
  }
  return {
    cache: informer,
    async stop() {
      stopped = true
      clearTimeout(retry)
      await informer.stop()
    },
  }
}
