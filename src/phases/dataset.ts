import { UserError } from '../errors.js'
import type { RegistryClient } from '../oci/client.js'
import { formatReference, withDigest, type Reference } from '../oci/reference.js'
import type { Digest } from '../oci/types.js'
import type { Plan } from '../plan.js'

export interface PinnedDataset {
  /** The dataset as the user named it (tag or digest). */
  requested: Reference
  /** The same dataset pinned by digest: what the pipeline trains from. */
  reference: Reference & { digest: Digest }
  digest: Digest
  mediaType: string
}

/**
 * Pins the dataset to the digest its tag points at now, before a cluster is
 * created: a missing dataset fails in seconds, and training can never pick up
 * a tag that moved during the run.
 */
export async function resolveDataset(
  plan: Pick<Plan, 'dataset'>,
  registry: RegistryClient,
): Promise<PinnedDataset> {
  let resolved
  try {
    resolved = await registry.resolve(plan.dataset)
  } catch (err) {
    throw new UserError(
      `dataset ${formatReference(plan.dataset)} cannot be resolved: ${(err as Error).message}`,
    )
  }
  return {
    requested: plan.dataset,
    reference: withDigest(plan.dataset, resolved.digest),
    digest: resolved.digest,
    mediaType: resolved.mediaType,
  }
}
