import type { RegistryClient } from '../oci/client.js'
import { formatReference, type Reference } from '../oci/reference.js'
import type { Docker } from '../tools/docker.js'
import { REGISTRY_HOST_ADDRESS, REGISTRY_HOST_PORT, REGISTRY_PORT } from '../tools/kind/config.js'

/** Where a runner-built trainer goes in the embedded registry. */
const TRAINER_REPOSITORY = 'oml-chains/trainer'

export interface TrainerImage {
  /** The image the Task runs: as given, or from the embedded registry by digest. */
  image: Reference
  /** Set when the image came from the runner's Docker engine and was pushed for the run. */
  pushedFrom?: string
}

export interface TrainerImageDeps {
  docker: Docker
  registry: RegistryClient
  /** Tag for the pushed copy (the run id), so concurrent jobs' copies do not collide. */
  tag: string
  /** The embedded registry as the runner's Docker reaches it (default 127.0.0.1:5000). */
  loopback?: string
}

/**
 * A trainer image built on the runner (a workflow's `docker build` of
 * Containerfile) exists only in its Docker engine. With the embedded registry
 * up, such an image is pushed there and the Task runs it by digest: pods pull
 * it like any other image, and the provenance records it pinned. An image
 * given by digest, or not in the local engine, is used as given.
 */
export async function prepareTrainerImage(
  given: Reference,
  embeddedRegistry: { host: string } | undefined,
  deps: TrainerImageDeps,
): Promise<TrainerImage> {
  if (given.digest || !embeddedRegistry) return { image: given }
  const local = formatReference(given)
  if (!(await deps.docker.hasImage(local))) return { image: given }
  // Pushed through the loopback address: Docker speaks plain HTTP to it
  // without an insecure-registries entry, unlike to registry.local.
  const viaLoopback = deps.loopback ?? `${REGISTRY_HOST_ADDRESS}:${REGISTRY_PORT}`
  const target = `${viaLoopback}/${TRAINER_REPOSITORY}:${deps.tag}`
  await deps.docker.tagImage(local, target)
  await deps.docker.pushImage(target)
  const pushed = await deps.registry.resolve({
    registry: viaLoopback,
    repository: TRAINER_REPOSITORY,
    tag: deps.tag,
  })
  return {
    image: {
      registry: REGISTRY_HOST_PORT,
      repository: TRAINER_REPOSITORY,
      digest: pushed.digest,
    },
    pushedFrom: local,
  }
}
