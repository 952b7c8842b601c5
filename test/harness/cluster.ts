import { startKube, type TestKube } from './kube.js'
import {
  startDeploymentStandIn,
  type DeploymentStandIn,
  type Stall,
} from './standins/deployments.js'
import { startWebhookStandIn, type WebhookStandIn } from './standins/webhook.js'

/** The webhook configurations of the (release-shaped) Tekton Pipelines release. */
const TEKTON_WEBHOOKS = ['validation.webhook.pipeline.tekton.dev', 'webhook.pipeline.tekton.dev']

export interface TestCluster {
  kube: TestKube
  deployments: DeploymentStandIn
  webhook: WebhookStandIn
  stop(): Promise<void>
}

/**
 * A cluster to install Tekton on: the real API server and deployment
 * controller, with the stand-ins for what needs containers (pods becoming
 * ready; Tekton's webhook serving `webhookReadyAfterMs` after it starts).
 */
export async function startTestCluster(
  options: {
    stall?: (namespace: string, name: string) => Stall | undefined
    webhookReadyAfterMs?: number
  } = {},
): Promise<TestCluster> {
  const kube = await startKube({ controllerManager: true })
  try {
    const [deployments, webhook] = await Promise.all([
      startDeploymentStandIn(kube.kubeconfig, { controllerManager: true, stall: options.stall }),
      startWebhookStandIn(kube.kubeconfig, {
        configurations: TEKTON_WEBHOOKS,
        readyAfterMs: options.webhookReadyAfterMs ?? 500,
      }),
    ])
    return {
      kube,
      deployments,
      webhook,
      async stop() {
        await Promise.all([deployments.stop(), webhook.stop()])
        await kube.stop()
      },
    }
  } catch (err) {
    await kube.stop()
    throw err
  }
}
