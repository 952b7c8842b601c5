/**
 * The trainer image for tests on the node: built from the action's own
 * Containerfile with the action's own build code (on the base test-tools.sh
 * made from Debian packages), pushed into the node cluster's registry, and
 * named as pods pull it: `registry.local:5000/oml-chains/trainer@sha256:…`.
 */
import { RegistryClient } from '../../../src/oci/client.js'
import type { Reference } from '../../../src/oci/reference.js'
import { prepareTrainerImage } from '../../../src/phases/trainer-image.js'
import { Docker } from '../../../src/tools/docker.js'
import { trainerBaseImage } from '../docker.js'
import { repoRoot } from '../tools.js'
import type { NodeRegistry } from './registry.js'

export async function buildTrainerImage(
  registry: NodeRegistry,
  workDir: string,
): Promise<Reference> {
  const built = await prepareTrainerImage(
    { source: 'build', baseImage: trainerBaseImage() },
    {
      docker: new Docker(),
      registry: new RegistryClient({ insecure: () => true }),
      embeddedRegistry: () => Promise.resolve({ host: registry.name }),
      // Only a pushed runner image is tagged with it; a build is tagged by its inputs.
      runTag: 'node-test',
      actionRoot: repoRoot,
      workDir,
      loopback: registry.host,
      log: () => undefined,
    },
  )
  return built.image
}
