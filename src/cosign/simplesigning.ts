import { UserError } from '../errors.js'
import { isRecord, parseJson } from '../json.js'

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

/** Parses and shape-checks a simple-signing payload from its exact bytes. */
export function parseSimpleSigningPayload(bytes: Uint8Array | string): SimpleSigningPayload {
  const value = parseJson(
    bytes,
    (reason) => new SimpleSigningFormatError(`simple-signing payload is not JSON: ${reason}`),
  )
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
