/**
 * A real Tekton release made here: scripts/test-tools.sh builds a project's
 * images with ko from its Go module on bases made from Debian packages, and
 * its release.yaml from the module's own config/, naming every image
 * `registry.local:5000/...@sha256:<digest>` (test/harness/releases/<name>.sh,
 * lib.sh). Both are cached once per recipe and linked as
 * .tools/releases/<name>; a test pushes the images into the registry its node
 * pulls from, then serves the manifest to the action (serve.ts).
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseManifests, type KubeObject } from '../../../src/kube/objects.js'
import { parseReference, type Reference } from '../../../src/oci/reference.js'
import type { Digest } from '../../../src/oci/types.js'
import type { TektonComponent } from '../../../src/tools/tekton/release.js'
import { pushFromLayout, type PushedLayoutImage } from '../images/oci-layout.js'
import type { InternetStandIn } from '../internet.js'
import { repoRoot } from '../tools.js'
import { serveTektonRelease, type ServedRelease } from './serve.js'

/** The registry the manifests name: the one pods, nodes and the runner reach alike (DESIGN 3). */
export const RELEASE_REGISTRY = 'registry.local:5000'

export interface NamespacedName {
  namespace: string
  name: string
}

export interface BuiltRelease {
  component: TektonComponent
  /** The version the release says it is (its `*-info` ConfigMap), as the action reads it. */
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

export interface BuiltReleaseAccess {
  /** Where test-tools.sh links it: release.yaml, layout/, build.txt. */
  dir: string
  /** Reads the release test-tools.sh made; fails with the command that makes it. */
  read(): Promise<BuiltRelease>
  /**
   * Pushes every image the release names into `registryHost` (a test
   * registry, `127.0.0.1:<port>`, or the node's `127.0.0.1:5000` while the
   * manifest says `registry.local:5000`: the same registry by another name),
   * under the repository and tag the manifest gives it. Returns the release
   * and where each image went.
   */
  push(registryHost: string): Promise<BuiltRelease & { pushed: PushedLayoutImage[] }>
  /**
   * Everything a run of the action needs to install this release: its images
   * pushed into `registryHost` (see push), and its manifest served by the
   * internet stand-in where the action downloads it
   * (https://infra.tekton.dev/tekton-releases/<component>/previous/<version>/release.yaml),
   * with its digest in GitHub's API. A run given `internet.env` then installs
   * it with the action's own Tekton phase.
   */
  publish(
    internet: InternetStandIn,
    registryHost: string,
  ): Promise<BuiltRelease & { pushed: PushedLayoutImage[]; served: ServedRelease }>
}

/** An image reference pinned by digest, anywhere in the text (image fields, controller args). */
const PINNED = /[^\s"'[\],]+@sha256:[0-9a-f]{64}/g

/**
 * Access to the release test-tools.sh links as .tools/releases/`name`:
 * `component`'s, whose version is in the ConfigMap `info` (as in Tekton's
 * releases: pipelines-info, chains-info). `check` may throw for a release
 * the tests cannot use.
 */
export function builtRelease(options: {
  name: string
  component: TektonComponent
  info: NamespacedName
  check?: (release: BuiltRelease) => void
}): BuiltReleaseAccess {
  const { name, component, info, check } = options
  const dir = path.join(repoRoot, '.tools', 'releases', name)

  async function read(): Promise<BuiltRelease> {
    const file = path.join(dir, 'release.yaml')
    let manifest: string
    try {
      manifest = await readFile(file, 'utf8')
    } catch (err) {
      throw new Error(
        `the ${name} release built here is missing (${file}): run \`npm run test-tools\` (scripts/test-tools.sh)`,
        { cause: err },
      )
    }
    const objects = parseManifests(manifest, file)
    const named = (kind: string) => objects.filter((o) => o.kind === kind)
    const infoMap = named('ConfigMap').find(
      (o) => o.metadata.namespace === info.namespace && o.metadata.name === info.name,
    )
    const version = (infoMap?.data as Record<string, unknown> | undefined)?.version
    if (typeof version !== 'string') {
      throw new Error(`${file} has no ConfigMap ${info.namespace}/${info.name} with a version`)
    }
    const release: BuiltRelease = {
      component,
      version,
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
    check?.(release)
    return release
  }

  async function push(registryHost: string) {
    const release = await read()
    const refs = release.images.map((image) => {
      const ref = parseReference(image)
      if (ref.registry !== RELEASE_REGISTRY || !ref.digest) {
        throw new Error(`the release names ${image}, not an image in ${RELEASE_REGISTRY} by digest`)
      }
      return ref as Reference & { digest: Digest }
    })
    const pushed = await pushFromLayout(path.join(dir, 'layout'), refs, registryHost)
    return { ...release, pushed }
  }

  async function publish(internet: InternetStandIn, registryHost: string) {
    const release = await push(registryHost)
    const served = serveTektonRelease(
      { manifests: internet.tektonReleases, api: internet.githubApi },
      { component, version: release.version, manifest: release.manifest },
    )
    return { ...release, served }
  }

  return { dir, read, push, publish }
}
