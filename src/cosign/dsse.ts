import { decodeBase64 } from '../base64.js'
import { UserError } from '../errors.js'
import { isRecord, parseJson } from '../json.js'

/** The payload type of an in-toto Statement inside a DSSE envelope (what Chains writes). */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json'

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

/** The payload bytes of an envelope. */
export function envelopePayload(envelope: DsseEnvelope): Buffer {
  const payload = decodeBase64(envelope.payload)
  if (payload === undefined) throw new DsseFormatError('DSSE envelope: payload is not base64')
  return payload
}

/**
 * Parses a DSSE envelope from the bytes of a `.att` layer (or any JSON text),
 * checking its shape so later steps can rely on the types.
 */
export function parseDsseEnvelope(json: Uint8Array | string): DsseEnvelope {
  const value = parseJson(
    json,
    (reason) => new DsseFormatError(`DSSE envelope is not JSON: ${reason}`),
  )
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
