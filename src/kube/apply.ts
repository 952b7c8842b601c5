import { UserError } from '../errors.js'
import { apiMessage, type Kube } from './client.js'
import { conditionOf, describeObject, type KubeObject } from './objects.js'
import { withRetry } from './retry.js'
import { waitFor } from './wait.js'

/** Who owns the fields we set, in server-side apply's bookkeeping. */
export const FIELD_MANAGER = 'oml-chains-action'

/** How many objects are applied at once: enough to overlap round trips, few enough for a small API server. */
const CONCURRENCY = 8

/**
 * Server-side applies one object (forcing ownership of the fields it sets, as
 * `kubectl apply --server-side --force-conflicts` does), retrying transient
 * failures until `deadline`. A partial object needs its own `fieldManager`:
 * applying it as the manager of the whole object would remove every field it
 * leaves out.
 */
export async function applyObject(
  kube: Kube,
  object: KubeObject,
  deadline: number,
  fieldManager = FIELD_MANAGER,
): Promise<KubeObject> {
  try {
    return await withRetry(
      () => kube.objects.applyRaw(object, fieldManager, true),
      deadline,
      `applying ${describeObject(object)}`,
    )
  } catch (err) {
    throw new UserError(`applying ${describeObject(object)} failed: ${apiMessage(err)}`)
  }
}

/** Kinds that start containers: applied last, once their config and secrets are in place. */
const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job'])

/**
 * Applies a release's objects in the order the API server needs: Namespaces,
 * then CRDs (and waits until each is Established, so its resources exist),
 * then everything else, several at a time, and workloads last, so that a
 * controller never starts before the ConfigMaps and Secrets it reads.
 */
export async function applyManifests(
  kube: Kube,
  objects: KubeObject[],
  deadline: number,
): Promise<void> {
  const namespaces = objects.filter((o) => o.kind === 'Namespace')
  const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition')
  const early = new Set([...namespaces, ...crds])
  const workloads = objects.filter((o) => WORKLOADS.has(o.kind))
  const rest = objects.filter((o) => !early.has(o) && !WORKLOADS.has(o.kind))

  await Promise.all(namespaces.map((o) => applyObject(kube, o, deadline)))
  await Promise.all(crds.map((o) => applyObject(kube, o, deadline)))
  await Promise.all(
    crds.map((crd) =>
      waitFor<KubeObject>(
        kube,
        {
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          name: crd.metadata.name,
        },
        ([found]) => conditionOf(found, 'Established')?.status === 'True',
        { deadline, what: `CustomResourceDefinition ${crd.metadata.name} to be Established` },
      ),
    ),
  )
  for (const batch of [rest, workloads]) {
    for (let i = 0; i < batch.length; i += CONCURRENCY) {
      await Promise.all(batch.slice(i, i + CONCURRENCY).map((o) => applyObject(kube, o, deadline)))
    }
  }
}
