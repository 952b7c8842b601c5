/**
 * Pushes images kept in an OCI image layout (built once by
 * scripts/test-tools.sh, cached next to the tools) into a registry the test
 * started, by digest: what a manifest made at build time names is then there,
 * whatever port the registry listens on. Blobs the registry has are skipped,
 * so a second push is a few HEADs.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { RegistryClient } from '../../../src/oci/client.js'
import { sha256Digest } from '../../../src/oci/digest.js'
import { parseManifest } from '../../../src/oci/manifest.js'
import { withDigest, withTag, type Reference } from '../../../src/oci/reference.js'
import type { Digest } from '../../../src/oci/types.js'

export interface PushedLayoutImage {
  /** The reference the image was pushed from (as a manifest names it). */
  source: Reference & { digest: Digest }
  /** `<registryHost>/<repository>@sha256:…`: where it is now. */
  pushed: string
  digest: Digest
}

/** Bytes of a blob in the layout, checked against its digest. */
async function readBlob(layout: string, digest: Digest): Promise<Uint8Array> {
  const file = path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length))
  const bytes = await readFile(file)
  const actual = sha256Digest(bytes)
  if (actual !== digest) {
    throw new Error(`${file} holds ${actual}, not ${digest}: rebuild with scripts/test-tools.sh`)
  }
  return bytes
}

/**
 * Pushes each image (a reference with a digest, whose manifest is in the
 * layout) into `registryHost` under the image's own repository and tag: an
 * image named `registry.local:5000/a/b:v1@sha256:…` lands in
 * `<registryHost>/a/b:v1`. Plain HTTP: the registry is the test's.
 */
export async function pushFromLayout(
  layout: string,
  images: readonly (Reference & { digest: Digest })[],
  registryHost: string,
): Promise<PushedLayoutImage[]> {
  const client = new RegistryClient({ insecure: (registry) => registry === registryHost })
  return Promise.all(
    images.map(async (source) => {
      const bytes = await readBlob(layout, source.digest)
      const { manifest, mediaType } = parseManifest(bytes, undefined, `${layout}: ${source.digest}`)
      if (!('layers' in manifest)) {
        throw new Error(`${source.digest} in ${layout} is an index: only images are pushed`)
      }
      const repo = { registry: registryHost, repository: source.repository }
      for (const blob of [manifest.config, ...manifest.layers]) {
        if (await client.hasBlob(repo, blob.digest)) continue
        await client.pushBlob(repo, await readBlob(layout, blob.digest))
      }
      const target = source.tag ? withTag(repo, source.tag) : withDigest(repo, source.digest)
      const { digest } = await client.pushManifest(target, bytes, mediaType)
      return { source, pushed: `${registryHost}/${source.repository}@${digest}`, digest }
    }),
  )
}
