/**
 * The real Tekton Pipelines release, made here: scripts/test-tools.sh builds
 * its images with ko from the Go module (the version the action pins) on
 * bases made from Debian packages, and its release.yaml from the module's own
 * config/, naming every image `registry.local:5000/...@sha256:<digest>`
 * (test/harness/releases/tekton-pipeline.sh). Both are cached once per recipe
 * and linked as .tools/releases/tekton-pipeline; a test pushes the images into
 * the registry its node pulls from, then serves the manifest to the action
 * (serve.ts).
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseManifests, type KubeObject } from '../../../src/kube/objects.js'
import { parseReference, type Reference } from '../../../src/oci/reference.js'
import type { Digest } from '../../../src/oci/types.js'
import { tektonPipelinesVersion } from '../../../src/versions.js'
import { pushFromLayout, type PushedLayoutImage } from '../images/oci-layout.js'
import type { InternetStandIn } from '../internet.js'
import { repoRoot } from '../tools.js'
import { serveTektonRelease, type ServedRelease } from './serve.js'

/** Where test-tools.sh links the release it made. */
export const TEKTON_PIPELINE_DIR = path.join(repoRoot, '.tools', 'releases', 'tekton-pipeline')
/** The registry the manifest names: the one pods, nodes and the runner reach alike (DESIGN 3). */
export const RELEASE_REGISTRY = 'registry.local:5000'

export interface NamespacedName {
  namespace: string
  name: string
}

export interface TektonPipelineRelease {
  version: string
  /** release.yaml, byte for byte what the action downloads. */
  manifest: string
  /** Hex SHA-256 of `manifest`: what GitHub's API reports for the asset. */
  sha256: string
  objects: KubeObject[]
  /** Every image the manifest names, as written there (sorted, once each). */
  images: string[]
  namespaces: string[]
  deployments: NamespacedName[]
}

/** An image reference pinned by digest, anywhere in the text (image fields, controller args). */
const PINNED = /[^\s"'[\],]+@sha256:[0-9a-f]{64}/g

/** Reads the release test-tools.sh made; fails with the command that makes it. */
export async function readTektonPipelineRelease(): Promise<TektonPipelineRelease> {
  const file = path.join(TEKTON_PIPELINE_DIR, 'release.yaml')
  let manifest: string
  try {
    manifest = await readFile(file, 'utf8')
  } catch (err) {
    throw new Error(
      `the Tekton Pipelines release built here is missing (${file}): run \`npm run test-tools\` (scripts/test-tools.sh)`,
      { cause: err },
    )
  }
  const objects = parseManifests(manifest, file)
  const named = (kind: string) => objects.filter((o) => o.kind === kind)
  return {
    version: tektonPipelinesVersion,
    manifest,
    sha256: createHash('sha256').update(manifest).digest('hex'),
    objects,
    images: [...new Set(manifest.match(PINNED) ?? [])].sort(),
    namespaces: named('Namespace').map((o) => o.metadata.name),
    deployments: named('Deployment').map((o) => ({
      namespace: o.metadata.namespace ?? 'default',
      name: o.metadata.name,
    })),
  }
}

/**
 * Pushes every image the release names into `registryHost` (a test
 * registry, `127.0.0.1:<port>`, or the node's `127.0.0.1:5000` while the
 * manifest says `registry.local:5000`: the same registry by another name),
 * under the repository and tag the manifest gives it. Returns the release and
 * where each image went.
 */
export async function pushTektonPipelineRelease(
  registryHost: string,
): Promise<TektonPipelineRelease & { pushed: PushedLayoutImage[] }> {
  const release = await readTektonPipelineRelease()
  const refs = release.images.map((image) => {
    const ref = parseReference(image)
    if (ref.registry !== RELEASE_REGISTRY || !ref.digest) {
      throw new Error(`the release names ${image}, not an image in ${RELEASE_REGISTRY} by digest`)
    }
    return ref as Reference & { digest: Digest }
  })
  const pushed = await pushFromLayout(path.join(TEKTON_PIPELINE_DIR, 'layout'), refs, registryHost)
  return { ...release, pushed }
}

/**
 * Everything a run of the action needs to install this release: its images
 * pushed into `registryHost` (see pushTektonPipelineRelease), and its
 * manifest served by the internet stand-in where the action downloads it
 * (https://infra.tekton.dev/tekton-releases/pipeline/previous/<version>/release.yaml),
 * with its digest in GitHub's API. A run given `internet.env` then installs
 * it with the action's own Tekton phase.
 */
export async function publishTektonPipelineRelease(
  internet: InternetStandIn,
  registryHost: string,
): Promise<TektonPipelineRelease & { pushed: PushedLayoutImage[]; served: ServedRelease }> {
  const release = await pushTektonPipelineRelease(registryHost)
  const served = serveTektonRelease(
    { manifests: internet.tektonReleases, api: internet.githubApi },
    { component: 'pipeline', version: release.version, manifest: release.manifest },
  )
  return { ...release, served }
}
