import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  createConfiguration,
  ServerConfiguration,
  type Configuration,
  HttpMethod,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  type KubernetesObject,
} from '@kubernetes/client-node'
import { UserError } from '../errors.js'
import { retryingHttpLibrary } from './http-retry.js'

/** The generic object API, with discovery (kind -> resource name) made public for watches. */
export class ObjectApi extends KubernetesObjectApi {
  static forConfig(config: KubeConfig): ObjectApi {
    const api = makeApi(config, ObjectApi)
    api.setDefaultNamespace(config)
    return api
  }

  discover(apiVersion: string, kind: string) {
    return this.resource(apiVersion, kind)
  }

  /**
   * Server-side apply of the object exactly as given. `patch` sends objects
   * through client-node's typed models, which drop JSON keys they spell
   * differently: a CRD schema's `x-kubernetes-preserve-unknown-fields` would
   * vanish, and the API server would then prune every Tekton spec.
   */
  async applyRaw<T extends KubernetesObject>(
    object: T,
    fieldManager: string,
    force: boolean,
  ): Promise<T> {
    const path = await this.specUriPath(object, 'patch')
    const request = this.configuration.baseServer.makeRequestContext(path, HttpMethod.PATCH)
    request.setHeaderParam('Accept', 'application/json')
    request.setHeaderParam('Content-Type', PatchStrategy.ServerSideApply)
    request.setQueryParam('fieldManager', fieldManager)
    request.setQueryParam('force', String(force))
    request.setBody(JSON.stringify(object))
    return this.requestPromise<T>(request)
  }
}

/** The API clients a run uses, all from one kubeconfig. */
export interface Kube {
  config: KubeConfig
  server: string
  objects: ObjectApi
  core: CoreV1Api
  apps: AppsV1Api
  watch: Watch
}

/** Connects to the cluster of a kubeconfig (its current context). */
export function connect(kubeconfig: string, source = 'kubeconfig'): Kube {
  const config = new KubeConfig()
  try {
    config.loadFromString(kubeconfig)
  } catch (err) {
    throw new UserError(`${source} is not a valid kubeconfig: ${(err as Error).message}`)
  }
  const cluster = config.getCurrentCluster()
  if (!cluster) throw new UserError(`${source} has no current context with a cluster`)
  return {
    config,
    server: cluster.server,
    objects: ObjectApi.forConfig(config),
    core: makeApi(config, CoreV1Api),
    apps: makeApi(config, AppsV1Api),
    watch: new Watch(config),
  }
}

/** HTTP status of a failed API call, if it got that far. */
/**
 * An API client of `type` for the kubeconfig's current cluster, as
 * KubeConfig.makeApiClient makes one, but sending every request through
 * retryingHttpLibrary: a throttled or briefly failing server is retried.
 */
export function makeApi<T>(config: KubeConfig, type: new (configuration: Configuration) => T): T {
  const cluster = config.getCurrentCluster()
  if (!cluster) throw new UserError('the kubeconfig has no current cluster')
  return new type(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: config },
      httpApi: retryingHttpLibrary(),
    }),
  )
}

export function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined
}

/** The API server's own message for a failed call (its Status body), else the error's. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body
    const text = typeof body === 'string' ? body : (JSON.stringify(body) ?? '')
    try {
      const status = JSON.parse(text) as { message?: string }
      if (status.message) return `HTTP ${err.code}: ${status.message}`
    } catch {
      // not a Status object: fall through
    }
    if (text) return `HTTP ${err.code}: ${text.slice(0, 500)}`
    // No body (client-node gives none for some 401s): the reason is in its message.
    const reason = /^Message: (.*)$/m.exec(err.message)?.[1]
    return `HTTP ${err.code}${reason ? ` ${reason}` : ''}`
  }
  return err instanceof Error ? err.message : String(err)
}
