import { UserError } from '../errors.js'
import { isRecord } from '../json.js'
import { isDigest } from './digest.js'
import {
  MediaType,
  allManifestTypes,
  indexManifestTypes,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type Manifest,
} from './types.js'

/** Media type without parameters (`application/json; charset=utf-8` -> `application/json`). */
export function bareMediaType(contentType: string | null | undefined): string | undefined {
  const bare = contentType?.split(';')[0]?.trim().toLowerCase()
  return bare ? bare : undefined
}

function checkAnnotations(value: unknown, where: string): void {
  if (value === undefined) return
  if (!isRecord(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new UserError(`${where}: annotations must map strings to strings`)
  }
}

function checkDescriptor(value: unknown, where: string): Descriptor {
  if (!isRecord(value)) throw new UserError(`${where}: not a descriptor object`)
  const { mediaType, digest, size } = value
  if (typeof mediaType !== 'string' || mediaType === '') {
    throw new UserError(`${where}: mediaType missing`)
  }
  if (!isDigest(digest)) {
    throw new UserError(`${where}: digest ${JSON.stringify(digest)} is not sha256:<64 hex>`)
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new UserError(`${where}: size ${JSON.stringify(size)} is not a non-negative integer`)
  }
  checkAnnotations(value.annotations, where)
  return value as unknown as Descriptor
}

/**
 * Parses and checks a manifest or index. The type comes from the document's own
 * `mediaType` (it is covered by the digest), else from the response's Content-Type,
 * else from its shape (`manifests` means an index), as registries do for OCI
 * documents that omit the field.
 */
export function parseManifest(
  bytes: Uint8Array,
  contentType: string | null | undefined,
  what: string,
): { manifest: Manifest; mediaType: string } {
  let doc: unknown
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new UserError(`${what}: manifest is not valid JSON (${(err as Error).message})`)
  }
  if (!isRecord(doc)) throw new UserError(`${what}: manifest is not a JSON object`)
  if (doc.schemaVersion !== 2) {
    throw new UserError(
      `${what}: manifest schemaVersion ${JSON.stringify(doc.schemaVersion)} is not supported (only 2)`,
    )
  }
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined
  const header = bareMediaType(contentType)
  const mediaType =
    declared ??
    (header && allManifestTypes.includes(header)
      ? header
      : 'manifests' in doc
        ? MediaType.ociIndex
        : MediaType.ociManifest)
  if (!allManifestTypes.includes(mediaType)) {
    throw new UserError(`${what}: unsupported manifest media type ${mediaType}`)
  }
  checkAnnotations(doc.annotations, what)
  if (doc.subject !== undefined) checkDescriptor(doc.subject, `${what}: subject`)

  if (indexManifestTypes.includes(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw new UserError(`${what}: index has no manifests list`)
    doc.manifests.forEach((d, i) => checkDescriptor(d, `${what}: manifests[${i}]`))
    return { manifest: doc as unknown as ImageIndex, mediaType }
  }
  checkDescriptor(doc.config, `${what}: config`)
  if (!Array.isArray(doc.layers)) throw new UserError(`${what}: manifest has no layers list`)
  doc.layers.forEach((d, i) => checkDescriptor(d, `${what}: layers[${i}]`))
  return { manifest: doc as unknown as ImageManifest, mediaType }
}
