/**
 * The Chains controller's log as the stand-in writes it: a Pod record of the
 * controller on the kubelet stand-in's Node, and Chains-shaped JSON lines
 * naming each run, so the action reads them through the real API server.
 */
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { randomBytes, randomUUID } from 'node:crypto'
import {
  CHAINS_CONTROLLER_CONTAINER,
  CHAINS_CONTROLLER_LABEL,
} from '../../../src/kube/chains-annotations.js'
import { statusOf, type Kube } from '../../../src/kube/client.js'
import { CHAINS_NAMESPACE } from './chains-config.js'
import type { RunKey } from './chains-run.js'
import type { KubeletStandIn } from './kubelet.js'

/** The image of the release's controller, for the Pod record. */
const CONTROLLER_IMAGE =
  'ghcr.io/tektoncd/chains/controller-92006fd957c0afd31de6a40b3e33b39f:v0.29.2'
const mergePatchHeader = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Lines as Chains' knative logger writes them (config-logging: zap, JSON,
 * ISO 8601 `ts`, logger `watcher`), with the reconciled object's key.
 */
export class ZapLog {
  constructor(
    private readonly write: (line: string) => void,
    private readonly key: RunKey,
  ) {}

  private line(level: string, msg: string, fields: Record<string, string> = {}): void {
    const kind = this.key.kind.toLowerCase()
    this.write(
      JSON.stringify({
        level,
        ts: new Date().toISOString(),
        logger: 'watcher',
        caller: `${kind}/${kind}.go:0`,
        msg,
        'knative.dev/controller': `github.com.tektoncd.chains.pkg.reconciler.${kind}.Reconciler`,
        'knative.dev/kind': `tekton.dev.${this.key.kind}`,
        'knative.dev/traceid': randomUUID(),
        'knative.dev/key': `${this.key.namespace}/${this.key.name}`,
        ...fields,
      }),
    )
  }

  info(msg: string): void {
    this.line('info', msg)
  }
  warn(msg: string): void {
    this.line('warn', msg)
  }
  error(msg: string, fields?: Record<string, string>): void {
    this.line('error', msg, fields)
  }
}

/** The controller's Pod record, Running on the kubelet stand-in's Node, its container started. */
export async function startControllerPod(kube: Kube, kubelet: KubeletStandIn): Promise<string> {
  try {
    await kube.core.createNamespace({ body: { metadata: { name: CHAINS_NAMESPACE } } })
  } catch (err) {
    if (statusOf(err) !== 409) throw err
  }
  const suffix = randomBytes(4).toString('hex').slice(0, 5)
  const name = `${CHAINS_CONTROLLER_CONTAINER}-${suffix}`
  await kube.core.createNamespacedPod({
    namespace: CHAINS_NAMESPACE,
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: CHAINS_NAMESPACE,
        labels: {
          ...CHAINS_CONTROLLER_LABEL,
          'app.kubernetes.io/name': 'controller',
          'app.kubernetes.io/component': 'controller',
          'app.kubernetes.io/instance': 'default',
          'app.kubernetes.io/part-of': 'tekton-chains',
        },
      },
      spec: {
        nodeName: kubelet.nodeName,
        serviceAccountName: 'tekton-chains-controller',
        containers: [{ name: CHAINS_CONTROLLER_CONTAINER, image: CONTROLLER_IMAGE }],
      },
    },
  })
  const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  await kube.core.patchNamespacedPodStatus(
    {
      name,
      namespace: CHAINS_NAMESPACE,
      body: {
        status: {
          phase: 'Running',
          hostIP: '127.0.0.1',
          containerStatuses: [
            {
              name: CHAINS_CONTROLLER_CONTAINER,
              image: CONTROLLER_IMAGE,
              imageID: '',
              ready: true,
              restartCount: 0,
              state: { running: { startedAt: startedAt as unknown as Date } },
            },
          ],
        },
      },
    },
    mergePatchHeader,
  )
  kubelet.start(CHAINS_NAMESPACE, name, CHAINS_CONTROLLER_CONTAINER)
  return name
}
