import { PatchStrategy } from '@kubernetes/client-node'
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
 * failures until `deadline`.
 */
export async function applyObject(
  kube: Kube,
  object: KubeObject,
  deadline: number,
): Promise<KubeObject> {
  try {
    return await withRetry(
      () =>
        kube.objects.patch(
          object,
          undefined,
          undefined,
          FIELD_MANAGER,
          true,
          PatchStrategy.ServerSideApply,
        ),
      deadline,
    )
  } catch (err) {
    throw new UserError(`applying ${describeObject(object)} failed: ${apiMessage(err)}`)
  }
}

/**
 * Applies a release's objects in the order the API server needs: Namespaces,
 * then CRDs (and waits until each is Established, so its resources exist),
 * then everything else, several at a time.
 */
export async function applyManifests(
  kube: Kube,
  objects: KubeObject[],
  deadline: number,
): Promise<void> {
  const namespaces = objects.filter((o) => o.kind === 'Namespace')
  const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition')
  const rest = objects.filter(
    (o) => o.kind !== 'Namespace' && o.kind !== 'CustomResourceDefinition',
  )

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
  for (let i = 0; i < rest.length; i += CONCURRENCY) {
    await Promise.all(rest.slice(i, i + CONCURRENCY).map((o) => applyObject(kube, o, deadline)))
  }
}
