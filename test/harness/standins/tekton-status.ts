/**
 * What the Tekton stand-in writes as the controller and the kubelet would:
 * statuses through the status subresource, and the PipelineRun's labels.
 */
import {
  type CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1ContainerState,
  type V1Pod,
} from '@kubernetes/client-node'
import type { connect } from '../../../src/kube/client.js'
import type { Step } from './tekton-specs.js'

export type Kube = ReturnType<typeof connect> & { custom: CustomObjectsApi }

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

export const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

export function condition(status: string, reason: string, message: string) {
  return { type: 'Succeeded', status, reason, message, lastTransitionTime: now() }
}

/**
 * The imageID a container runtime reports for a step's image: `repo@sha256:…`
 * for an image given by digest (a tag beside the digest dropped). Nothing is
 * pulled here, so an image given by tag has no digest to report: its imageID
 * is left as the reference itself, not an invented digest (Chains then fails
 * to read it as a material, and says so).
 */
export function imageIdOf(image: string): string {
  const at = image.indexOf('@')
  if (at < 0) return image
  let name = image.slice(0, at)
  const colon = name.lastIndexOf(':')
  if (colon > name.lastIndexOf('/')) name = name.slice(0, colon)
  return `${name}${image.slice(at)}`
}

export async function setStatus(
  kube: Kube,
  kind: 'PipelineRun' | 'TaskRun',
  namespace: string,
  name: string,
  status: Record<string, unknown>,
): Promise<void> {
  // The CRDs have a status subresource: status is written there, as the controller does.
  await kube.custom.patchNamespacedCustomObjectStatus(
    {
      group: 'tekton.dev',
      version: 'v1',
      namespace,
      plural: kind === 'PipelineRun' ? 'pipelineruns' : 'taskruns',
      name,
      body: { status },
    },
    mergePatch,
  )
}

/** Labels are metadata, not status: Tekton updates the object itself for them. */
export async function setPipelineRunLabels(
  kube: Kube,
  namespace: string,
  name: string,
  labels: Record<string, string>,
): Promise<void> {
  await kube.custom.patchNamespacedCustomObject(
    {
      group: 'tekton.dev',
      version: 'v1',
      namespace,
      plural: 'pipelineruns',
      name,
      body: { metadata: { labels } },
    },
    mergePatch,
  )
}

/** The Pod's phase and one container status per step (`states` by container name). */
export async function setPodStatus(
  kube: Kube,
  namespace: string,
  name: string,
  phase: string,
  steps: Step[],
  states: Record<string, object>,
): Promise<void> {
  const status: V1Pod['status'] = {
    phase,
    hostIP: '127.0.0.1',
    containerStatuses: steps.map((s) => {
      const container = `step-${s.name}`
      const state = states[container]
      const image = s.image ?? 'scratch'
      return {
        name: container,
        image,
        // The kubelet knows the image's ID once the container was created.
        imageID: state ? imageIdOf(image) : '',
        ready: false,
        restartCount: 0,
        // Times stay RFC 3339 strings: the API server reads them as such.
        state: (state ?? { waiting: { reason: 'PodInitializing' } }) as V1ContainerState,
      }
    }),
  }
  await kube.core.patchNamespacedPodStatus({ name, namespace, body: { status } }, mergePatch)
}
