import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { RegistryClient } from '../../src/oci/client.js'
import { formatReference, withDigest, withTag, type Reference } from '../../src/oci/reference.js'
import { Annotation, MediaType, type Digest, type ImageManifest } from '../../src/oci/types.js'
import { runCosign } from './cosign.js'
import { repoRoot } from './tools.js'

/** The Chains-shaped PipelineRun predicate the tests attest (IMAGE_* replaced per image). */
export const testPredicateFile = path.join(
  repoRoot,
  'src/provenance/testdata/pipelinerun-predicate.json',
)

export interface PushedImage {
  /** The image pinned to its manifest digest (what cosign signs). */
  ref: Reference & { digest: Digest }
  digest: Digest
  /** `host/repository@sha256:…` */
  pinned: string
  /** `host/repository:tag` */
  tagged: string
  /** The layer's content, to tell images apart in assertions. */
  layer: Uint8Array
}

/**
 * Pushes a small OCI artifact shaped like an omlmd model (a config and one
 * model layer with a file name) and tags it. The layer names the repository and
 * tag, so every pushed image has its own digest and its own `.sig`/`.att` tags.
 */
export async function pushTestImage(
  client: RegistryClient,
  registryHost: string,
  repository: string,
  tag: string,
): Promise<PushedImage> {
  const repo = { registry: registryHost, repository }
  const layer = new TextEncoder().encode(`fake model weights for ${repository}:${tag}\n`)
  const config = new TextEncoder().encode(JSON.stringify({ framework: 'sklearn', name: tag }))
  const [configBlob, layerBlob] = await Promise.all([
    client.pushBlob(repo, config),
    client.pushBlob(repo, layer),
  ])
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: 'application/x-config', ...configBlob },
    layers: [
      {
        mediaType: 'application/x-mlmodel',
        ...layerBlob,
        annotations: { [Annotation.title]: 'model.joblib' },
      },
    ],
  }
  const bytes = new TextEncoder().encode(JSON.stringify(manifest))
  const { digest } = await client.pushManifest(withTag(repo, tag), bytes, MediaType.ociManifest)
  const ref = withDigest(repo, digest)
  return {
    ref,
    digest,
    pinned: formatReference(ref),
    tagged: formatReference(withTag(repo, tag)),
    layer,
  }
}

export interface CosignImageOptions {
  image: PushedImage
  /** Holds cosign.key (opened with `password`). */
  keyDir: string
  password: string
  /** cosign's HOME; a temp dir the caller removes. */
  home: string
}

const registryFlags = ['--tlog-upload=false', '--allow-insecure-registry', '--yes']

/** `cosign sign`: writes the image's `sha256-<hex>.sig` tag, as Chains does (no Rekor). */
export async function cosignSign(options: CosignImageOptions): Promise<void> {
  const { image, keyDir, password, home } = options
  const args = ['sign', '--key', path.join(keyDir, 'cosign.key'), ...registryFlags, image.pinned]
  await runCosign({ cwd: keyDir, home, password }, args)
}

/**
 * `cosign attest --type slsaprovenance`: adds a layer to the image's
 * `sha256-<hex>.att` tag (an existing tag keeps its layers, as with Chains'
 * TaskRun and PipelineRun attestations).
 */
export async function cosignAttest(
  options: CosignImageOptions & { predicateFile: string },
): Promise<void> {
  const { image, keyDir, password, home, predicateFile } = options
  const args = [
    'attest',
    '--key',
    path.join(keyDir, 'cosign.key'),
    '--predicate',
    predicateFile,
    '--type',
    'slsaprovenance',
    ...registryFlags,
    image.pinned,
  ]
  await runCosign({ cwd: keyDir, home, password }, args)
}

interface PredicateTask {
  results?: { name: string; value: unknown }[]
}

/**
 * Writes a copy of a Chains PipelineRun predicate whose IMAGE_URL and
 * IMAGE_DIGEST task results name `image`, as Chains would record them for it.
 * Returns the file's path (in a new directory under `dir`).
 */
export async function writeImagePredicate(
  dir: string,
  template: string,
  image: PushedImage,
): Promise<string> {
  const predicate = JSON.parse(await readFile(template, 'utf8')) as {
    buildConfig: { tasks: PredicateTask[] }
  }
  const values: Record<string, string> = { IMAGE_URL: image.tagged, IMAGE_DIGEST: image.digest }
  let replaced = 0
  for (const result of predicate.buildConfig.tasks.flatMap((t) => t.results ?? [])) {
    const value = values[result.name]
    if (value === undefined) continue
    result.value = value
    replaced++
  }
  // A template without both results would attest nothing about this image.
  if (replaced !== 2) throw new Error(`${template}: expected IMAGE_URL and IMAGE_DIGEST results`)
  const file = path.join(await mkdtemp(path.join(dir, 'predicate-')), 'predicate.json')
  await writeFile(file, JSON.stringify(predicate, null, 2))
  return file
}

/**
 * Signs the image and attests its provenance with real cosign, leaving in the
 * registry the `.sig` and `.att` Chains leaves. The predicate file is used as a
 * template: the attested copy (written under `home`) carries the image's URL
 * and digest. Returns the attested predicate's path.
 */
export async function signAndAttest(
  options: CosignImageOptions & { predicateFile: string },
): Promise<string> {
  const predicateFile = await writeImagePredicate(
    options.home,
    options.predicateFile,
    options.image,
  )
  await cosignSign(options)
  await cosignAttest({ ...options, predicateFile })
  return predicateFile
}
