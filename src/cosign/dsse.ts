import { UserError } from '../errors.js'

/** The payload type of an in-toto Statement inside a DSSE envelope (what Chains writes). */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json'

/** Media type of a `.att` layer whose blob is a DSSE envelope. */
export const DSSE_ENVELOPE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json'

/** One signature of a DSSE envelope. `keyid` is only a hint (cosign may leave it empty). */
export interface DsseSignature {
  keyid?: string
  /** Base64 signature over the PAE of the envelope (DER ECDSA for cosign keys). */
  sig: string
}

/** A DSSE envelope as stored in a `.att` layer. */
export interface DsseEnvelope {
  payloadType: string
  /** Base64 of the payload bytes. */
  payload: string
  signatures: DsseSignature[]
}

/** An envelope that is not valid JSON or does not have the DSSE shape. */
export class DsseFormatError extends UserError {
  override name = 'DsseFormatError'
}

/**
 * DSSE pre-authentication encoding: what the signatures sign.
 * "DSSEv1 " + len(type) + " " + type + " " + len(body) + " " + body, lengths
 * being byte lengths in ASCII decimal.
 */
export function pae(payloadType: string, body: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8')
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'ascii'),
    type,
    Buffer.from(` ${body.length} `, 'ascii'),
    body,
  ])
}

// Standard or URL-safe alphabet (DSSE accepts both), padding optional.
const base64Pattern = /^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}$/

/**
 * Decodes base64 strictly: Buffer.from(s, 'base64') silently skips characters
 * outside the alphabet, which would let a corrupted field decode to something.
 * Returns undefined when `value` is not base64.
 */
export function decodeBase64(value: string): Buffer | undefined {
  if (!base64Pattern.test(value)) return undefined
  const unpadded = value.replace(/=+$/, '')
  // A single leftover character cannot encode a byte; padding must complete a quantum.
  if (unpadded.length % 4 === 1) return undefined
  if (value.length !== unpadded.length && value.length % 4 !== 0) return undefined
  return Buffer.from(
    unpadded,
    unpadded.includes('-') || unpadded.includes('_') ? 'base64url' : 'base64',
  )
}

/** The payload bytes of an envelope. */
export function envelopePayload(envelope: DsseEnvelope): Buffer {
  const payload = decodeBase64(envelope.payload)
  if (payload === undefined) throw new DsseFormatError('DSSE envelope: payload is not base64')
  return payload
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Parses a DSSE envelope from the bytes of a `.att` layer (or any JSON text),
 * checking its shape so later steps can rely on the types.
 */
export function parseDsseEnvelope(json: Uint8Array | string): DsseEnvelope {
  const text = typeof json === 'string' ? json : Buffer.from(json).toString('utf8')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new DsseFormatError(`DSSE envelope is not JSON: ${(err as Error).message}`)
  }
  if (!isRecord(value)) throw new DsseFormatError('DSSE envelope is not a JSON object')

  const { payloadType, payload, signatures } = value
  if (typeof payloadType !== 'string' || payloadType === '') {
    throw new DsseFormatError('DSSE envelope: "payloadType" is missing or not a string')
  }
  if (typeof payload !== 'string') {
    throw new DsseFormatError('DSSE envelope: "payload" is missing or not a string')
  }
  if (decodeBase64(payload) === undefined) {
    throw new DsseFormatError('DSSE envelope: "payload" is not base64')
  }
  if (!Array.isArray(signatures)) {
    throw new DsseFormatError('DSSE envelope: "signatures" is missing or not an array')
  }
  const parsed = signatures.map((entry: unknown, i): DsseSignature => {
    if (!isRecord(entry))
      throw new DsseFormatError(`DSSE envelope: signatures[${i}] is not an object`)
    const { keyid, sig } = entry
    if (typeof sig !== 'string' || sig === '') {
      throw new DsseFormatError(`DSSE envelope: signatures[${i}].sig is missing or not a string`)
    }
    // Go writers may emit null for an absent keyid; treat it as absent.
    if (keyid === undefined || keyid === null) return { sig }
    if (typeof keyid !== 'string') {
      throw new DsseFormatError(`DSSE envelope: signatures[${i}].keyid is not a string`)
    }
    return { keyid, sig }
  })
  return { payloadType, payload, signatures: parsed }
}
