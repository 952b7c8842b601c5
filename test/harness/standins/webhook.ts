/**
 * Stand-in for the Tekton Pipelines admission webhook (the
 * `tekton-pipelines-webhook` pod). The real webhook runs on the real node
 * (test/node/); this stays for the Tekton phase's fault tests, a webhook that
 * refuses admission after it reports Ready, or stops answering for a while
 * (its pod restarting): faults the real one shows only by chance. A real HTTPS
 * admission server on 127.0.0.1 answers AdmissionReview v1 requests the
 * API server sends it.
 *
 * Until it is "ready" it does nothing to the cluster: the release's webhook
 * configurations (failurePolicy Fail, clientConfig.service naming a Service
 * nobody serves) make the API server reject Task creates with a 500 "failed
 * calling webhook", as a cluster does before the webhook pod serves.
 *
 * Becoming ready is what the webhook pod starting to serve looks like from the
 * API server: the stand-in sets each named configuration's caBundle (as the
 * real webhook does) and points the Service at itself. The API server resolves
 * `clientConfig.service` through the Service; an ExternalName Service naming
 * 127.0.0.1, plus the webhook's `service.port`/`service.path`, sends the call
 * here. The configurations keep their `service` reference, so re-applying the
 * release (which sets only the service's name and namespace) leaves admission
 * working, as on a real cluster. After that it keeps watching: configurations
 * or Services applied later are pointed at it too, as the real webhook's
 * reconciler does.
 */
import { PatchStrategy, type KubernetesObject } from '@kubernetes/client-node'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { createSecureContext, type SecureContext } from 'node:tls'
import { apiMessage, connect, statusOf, type Kube } from '../../../src/kube/client.js'
import { makeTestCA, type ServingCert, type TestCA } from '../certs.js'
import { watchAll, type Watched } from './watch.js'

/** Field manager of the stand-in's writes, so they are told apart from the action's. */
const FIELD_MANAGER = 'tekton-webhook-stand-in'
const ADMISSION_V1 = 'admissionregistration.k8s.io/v1'
const FLAVOURS = [
  { kind: 'ValidatingWebhookConfiguration', flavour: 'validating' },
  { kind: 'MutatingWebhookConfiguration', flavour: 'mutating' },
] as const
type Flavour = (typeof FLAVOURS)[number]['flavour']

export interface WebhookStandInOptions {
  /** Names of the Validating/MutatingWebhookConfigurations this webhook serves. */
  configurations: string[]
  /** Becomes ready by itself this long after starting (the pod's start-up); else only on `becomeReady()`. */
  readyAfterMs?: number
  /** Where problems in the background (watch errors, failed patches) are reported. */
  log?: (message: string) => void
}

/** One AdmissionReview the stand-in answered. */
export interface AdmissionRecord {
  configuration: string
  flavour: Flavour
  operation: string
  /** `tekton.dev/v1/tasks` */
  resource: string
  namespace?: string
  name?: string
  dryRun: boolean
  allowed: boolean
}

export interface WebhookStandIn {
  /** Where it listens: `https://127.0.0.1:PORT`. */
  url: string
  /** Starts serving (idempotent): resolves once every named configuration that exists points here. */
  becomeReady(): Promise<void>
  /** Resolves when it has become ready, whoever made it so (the timer or `becomeReady`). */
  whenReady(): Promise<void>
  isReady(): boolean
  /**
   * From now on, deny every validating review with this message (the API
   * server answers the client with a 400 naming the webhook); `undefined`
   * admits again. Mutating reviews are always admitted, as Tekton's defaulting
   * webhook only fills in defaults.
   */
  deny(message: string | undefined): void
  /**
   * While true, answer every review with HTTP 503, as a webhook whose pod
   * restarts behind its Service: the API server fails the request with
   * "failed calling webhook", which a client may try again.
   */
  unavailable(on: boolean): void
  /** How many AdmissionReviews it answered with allowed: true. */
  admitted(): number
  /** Every review answered, oldest first. */
  reviews(): readonly AdmissionRecord[]
  stop(): Promise<void>
}

interface ClientConfig {
  url?: string
  caBundle?: string
  service?: { name: string; namespace: string; port?: number; path?: string }
}
type WebhookConfiguration = KubernetesObject & {
  webhooks?: { name: string; clientConfig: ClientConfig }[]
}
type Service = KubernetesObject & { spec?: { type?: string; externalName?: string } }

interface AdmissionReview {
  request?: {
    uid: string
    operation: string
    resource: { group: string; version: string; resource: string }
    namespace?: string
    name?: string
    dryRun?: boolean
  }
}

/** Where the API server reaches the stand-in through an ExternalName Service. */
const LOOPBACK = '127.0.0.1'

export async function startWebhookStandIn(
  kubeconfig: string,
  options: WebhookStandInOptions,
): Promise<WebhookStandIn> {
  const kube = connect(kubeconfig, 'webhook stand-in kubeconfig')
  const log = options.log ?? ((message) => console.error(`webhook stand-in: ${message}`))
  const configurations = new Set(options.configurations)
  const ca = await makeTestCA()
  const caBundle = Buffer.from(ca.caPem).toString('base64')

  let denial: string | undefined
  let down = false
  const records: AdmissionRecord[] = []
  const server = await serve(ca, (path, review) => {
    const [, flavour, configuration] = path.split('/')
    const request = review.request
    if (!request || (flavour !== 'validating' && flavour !== 'mutating') || !configuration) {
      return undefined
    }
    if (down) return 'unavailable'
    const denied = flavour === 'validating' ? denial : undefined
    const { group, version, resource } = request.resource
    records.push({
      configuration,
      flavour,
      operation: request.operation,
      resource: [group, version, resource].filter(Boolean).join('/'),
      namespace: request.namespace,
      name: request.name,
      dryRun: request.dryRun === true,
      allowed: denied === undefined,
    })
    return {
      uid: request.uid,
      allowed: denied === undefined,
      // No code: the API server then answers 400, as for Tekton's own validation errors.
      ...(denied !== undefined && { status: { status: 'Failure', message: denied } }),
    }
  })
  const port = (server.address() as AddressInfo).port

  const reconciler = serialized(() => pointAtSelf(kube, configurations, port, caBundle))
  const watches: Watched<KubernetesObject>[] = []
  let stopped = false
  let readying: Promise<void> | undefined
  let ready = false
  let markReady!: () => void
  const readyPromise = new Promise<void>((resolve) => (markReady = resolve))

  const becomeReady = (): Promise<void> => {
    readying ??= (async () => {
      // Later changes (the release applied or re-applied, the Service created) are
      // pointed here as they happen.
      const report = (err: unknown) => {
        if (!stopped) log(apiMessage(err))
      }
      const onChange = () => {
        if (!stopped) reconciler().catch(report)
      }
      for (const { kind } of FLAVOURS) {
        watches.push(await watchAll(kube, ADMISSION_V1, kind, onChange, report))
      }
      watches.push(await watchAll(kube, 'v1', 'Service', onChange, report))
      await reconciler()
      ready = true
      markReady()
    })()
    return readying
  }

  const timer =
    options.readyAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          becomeReady().catch((err: unknown) => {
            if (!stopped) log(`becoming ready failed: ${apiMessage(err)}`)
          })
        }, options.readyAfterMs)

  return {
    url: `https://${LOOPBACK}:${port}`,
    becomeReady,
    whenReady: () => readyPromise,
    isReady: () => ready,
    deny(message) {
      denial = message
    },
    unavailable(on) {
      down = on
    },
    admitted: () => records.filter((r) => r.allowed).length,
    reviews: () => records,
    async stop() {
      stopped = true
      clearTimeout(timer)
      // Watches still being opened are stopped too.
      await readying?.catch(() => undefined)
      await Promise.all(watches.map((w) => w.stop()))
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await ca.dispose()
    },
  }
}

/**
 * The HTTPS server. The API server connects by IP (no SNI) for a `url`
 * clientConfig and by `<service>.<namespace>.svc` for a `service` one, so the
 * certificate is issued per name asked for, on first use.
 */
async function serve(
  ca: TestCA,
  answer: (path: string, review: AdmissionReview) => object | 'unavailable' | undefined,
): Promise<Server> {
  const byName = new Map<string, Promise<SecureContext>>()
  const contextFor = (name: string) => {
    let context = byName.get(name)
    if (!context) {
      context = ca.issue([name]).then((c: ServingCert) => createSecureContext(c))
      byName.set(name, context)
    }
    return context
  }
  const fallback = await ca.issue([LOOPBACK, 'localhost'])
  const server = createServer(
    {
      ...fallback,
      SNICallback: (name, done) => {
        contextFor(name).then(
          (context) => done(null, context),
          (err: Error) => done(err),
        )
      },
    },
    (req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        let response: object | 'unavailable' | undefined
        try {
          const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AdmissionReview
          if (req.method === 'POST')
            response = answer(new URL(req.url ?? '/', 'https://x').pathname, review)
        } catch {
          // not JSON: answered as a bad request below
        }
        if (response === 'unavailable') {
          res.writeHead(503, { 'content-type': 'text/plain' }).end('webhook stand-in: not serving')
          return
        }
        if (!response) {
          res
            .writeHead(400, { 'content-type': 'text/plain' })
            .end('not an AdmissionReview v1 request')
          return
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response,
          }),
        )
      })
    },
  )
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, LOOPBACK, resolve)
  })
  return server
}

/** Runs `task` one at a time; calls made while it runs share one more run after it. */
function serialized(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined
  let next: Promise<void> | undefined
  const run = (): Promise<void> => {
    if (!running) {
      running = task().finally(() => (running = undefined))
      return running
    }
    next ??= running
      .catch(() => undefined)
      .then(() => {
        next = undefined
        return run()
      })
    return next
  }
  return run
}

/** Points each named configuration, and the Services its webhooks name, at the stand-in. */
async function pointAtSelf(
  kube: Kube,
  configurations: Set<string>,
  port: number,
  caBundle: string,
): Promise<void> {
  const services = new Map<string, { name: string; namespace: string }>()
  for (const { kind, flavour } of FLAVOURS) {
    for (const name of configurations) {
      const config = await readOrUndefined<WebhookConfiguration>(kube, {
        apiVersion: ADMISSION_V1,
        kind,
        metadata: { name },
      })
      const webhooks = config?.webhooks ?? []
      const path = `/${flavour}/${name}`
      const wanted = webhooks.map((w): ClientConfig => {
        const { service } = w.clientConfig
        if (!service) return { url: `https://${LOOPBACK}:${port}${path}`, caBundle }
        services.set(`${service.namespace}/${service.name}`, service)
        return {
          service: { name: service.name, namespace: service.namespace, port, path },
          caBundle,
        }
      })
      const current = webhooks.map((w) => w.clientConfig)
      if (wanted.every((w, i) => sameClientConfig(w, current[i]))) continue
      await kube.objects.patch(
        {
          apiVersion: ADMISSION_V1,
          kind,
          metadata: { name },
          webhooks: webhooks.map((w, i) => ({ name: w.name, clientConfig: wanted[i] })),
        } as KubernetesObject,
        undefined,
        undefined,
        FIELD_MANAGER,
        true,
        PatchStrategy.ServerSideApply,
      )
    }
  }
  for (const { name, namespace } of services.values()) {
    const service = await readOrUndefined<Service>(kube, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace },
    })
    // Not applied yet: the Service watch brings us back when it is.
    if (!service) continue
    if (service.spec?.type === 'ExternalName' && service.spec.externalName === LOOPBACK) continue
    await kube.objects.patch(
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace },
        spec: { type: 'ExternalName', externalName: LOOPBACK },
      } as KubernetesObject,
      undefined,
      undefined,
      FIELD_MANAGER,
      true,
      PatchStrategy.ServerSideApply,
    )
  }
}

function sameClientConfig(a: ClientConfig, b: ClientConfig | undefined): boolean {
  if (!b || a.caBundle !== b.caBundle || a.url !== b.url) return false
  if (!a.service || !b.service) return a.service === b.service
  return a.service.port === b.service.port && a.service.path === b.service.path
}

async function readOrUndefined<T extends KubernetesObject>(
  kube: Kube,
  ref: KubernetesObject & { metadata: { name: string } },
): Promise<T | undefined> {
  try {
    return (await kube.objects.read(ref)) as T
  } catch (err) {
    if (statusOf(err) === 404) return undefined
    throw err
  }
}
