import { UserError } from '../errors.js'

/** Media type of a `.sig` layer: the layer blob is the simple-signing payload. */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'

/** Annotation of a `.sig` layer that holds the base64 signature over the payload. */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'

/** The `critical.type` cosign and Chains write. */
export const SIMPLE_SIGNING_TYPE = 'cosign container image signature'

/** The payload cosign (and Chains) sign for an image: the blob of a `.sig` layer. */
export interface SimpleSigningPayload {
  critical: {
    identity: { 'docker-reference': string }
    image: { 'docker-manifest-digest': string }
    type: typeof SIMPLE_SIGNING_TYPE
  }
  /** Free-form annotations (`cosign sign -a`); null when there are none. */
  optional?: Record<string, unknown> | null
}

/** A `.sig` payload that is not JSON or not a cosign simple-signing payload. */
export class SimpleSigningFormatError extends UserError {
  override name = 'SimpleSigningFormatError'
}

const digestPattern = /^sha256:[0-9a-f]{64}$/

/** True for `sha256:` + 64 lowercase hex characters, the only digest form compared here. */
export function isSha256Digest(value: string): boolean {
  return digestPattern.test(value)
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Parses and shape-checks a simple-signing payload from its exact bytes. */
export function parseSimpleSigningPayload(bytes: Uint8Array | string): SimpleSigningPayload {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new SimpleSigningFormatError(
      `simple-signing payload is not JSON: ${(err as Error).message}`,
    )
  }
  if (!isRecord(value) || !isRecord(value.critical)) {
    throw new SimpleSigningFormatError('simple-signing payload has no "critical" object')
  }
  const { identity, image, type } = value.critical
  if (type !== SIMPLE_SIGNING_TYPE) {
    throw new SimpleSigningFormatError(
      `simple-signing payload: critical.type is ${JSON.stringify(type)}, expected "${SIMPLE_SIGNING_TYPE}"`,
    )
  }
  if (!isRecord(identity) || typeof identity['docker-reference'] !== 'string') {
    throw new SimpleSigningFormatError(
      'simple-signing payload: critical.identity["docker-reference"] is missing',
    )
  }
  if (!isRecord(image) || typeof image['docker-manifest-digest'] !== 'string') {
    throw new SimpleSigningFormatError(
      'simple-signing payload: critical.image["docker-manifest-digest"] is missing',
    )
  }
  const { optional } = value
  if (optional !== undefined && optional !== null && !isRecord(optional)) {
    throw new SimpleSigningFormatError('simple-signing payload: "optional" is not an object')
  }
  return value as unknown as SimpleSigningPayload
}

/**
 * The payload bytes cosign would sign for `dockerReference` (repository,
 * without tag) at `digest`. Verification always works on the bytes as
 * stored, never on a re-serialisation; this is for producing payloads.
 */
export function buildSimpleSigningPayload(
  dockerReference: string,
  digest: string,
  optional: Record<string, unknown> | null = null,
): Buffer {
  const payload: SimpleSigningPayload = {
    critical: {
      identity: { 'docker-reference': dockerReference },
      image: { 'docker-manifest-digest': digest },
      type: SIMPLE_SIGNING_TYPE,
    },
    optional,
  }
  return Buffer.from(JSON.stringify(payload), 'utf8')
}
