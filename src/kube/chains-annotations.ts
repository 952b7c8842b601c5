/**
 * What Tekton Chains writes on the runs it handles, and where its controller
 * runs (Chains v0.29: pkg/chains/annotations, config/100-deployment.yaml).
 */

/** Every annotation Chains writes starts with this; it rewrites only these. */
export const CHAINS_ANNOTATION_PREFIX = 'chains.tekton.dev/'
/** `"true"` once signed (or, in released Chains, once it gave up without a signer), `"failed"` after the last retry. */
export const CHAINS_SIGNED = `${CHAINS_ANNOTATION_PREFIX}signed`
/** Failed signing attempts so far: "0", "1", "2"; at MAX_RETRIES the run is marked failed. */
export const CHAINS_RETRIES = `${CHAINS_ANNOTATION_PREFIX}retries`
/** The Rekor entry URL, when transparency is on. */
export const CHAINS_TRANSPARENCY = `${CHAINS_ANNOTATION_PREFIX}transparency`
/** A run label that makes Chains record `metadata.reproducible: true`. */
export const CHAINS_REPRODUCIBLE = `${CHAINS_ANNOTATION_PREFIX}reproducible`
export const CHAINS_MAX_RETRIES = 3

/** The values of CHAINS_SIGNED after which Chains leaves a run alone. */
export type SignedValue = 'true' | 'failed'

/** The field manager of Chains' server-side apply patches of those annotations. */
export const CHAINS_FIELD_MANAGER = 'tekton-chains-controller'

/** The label of the controller's pods (the release's pod template) and its container. */
export const CHAINS_CONTROLLER_LABEL = { app: 'tekton-chains-controller' } as const
export const CHAINS_CONTROLLER_CONTAINER = 'tekton-chains-controller'

/** CHAINS_SIGNED of an object, when Chains is done with it. */
export function signedValue(object: {
  metadata?: { annotations?: Record<string, string> }
}): SignedValue | undefined {
  const value = object.metadata?.annotations?.[CHAINS_SIGNED]
  return value === 'true' || value === 'failed' ? value : undefined
}
