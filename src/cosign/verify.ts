/**
 * Offline verification of what Chains (or cosign) pushes next to an image:
 * DSSE attestations (`.att`) and simple-signing signatures (`.sig`), checked
 * against the cosign public key.
 */
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { UserError } from '../errors.js'
import { parseStatement, StatementError, type InTotoStatement } from '../provenance/types.js'
import { decodeBase64 } from '../base64.js'
import { isDigest } from '../oci/digest.js'
import { IN_TOTO_PAYLOAD_TYPE, pae, type DsseEnvelope, type DsseSignature } from './dsse.js'
import { chainsKeyId, loadPublicKey, PublicKeyError, type PublicKeyInput } from './keyid.js'
import {
  parseSimpleSigningPayload,
  SimpleSigningFormatError,
  type SimpleSigningPayload,
} from './simplesigning.js'

/** What failed, for callers that react differently (and for tests). */
export type VerificationFailure =
  | 'key' // the public key cannot be used
  | 'no-signature' // nothing to verify
  | 'signature' // no signature verifies with the key
  | 'payload-type' // a DSSE envelope that is not an in-toto attestation
  | 'payload' // signed, but the payload is not what it claims to be
  | 'digest' // signed, but for another image

/** A signature or attestation that does not check out. */
export class VerificationError extends UserError {
  override name = 'VerificationError'
  constructor(
    readonly reason: VerificationFailure,
    message: string,
  ) {
    super(message)
  }
}

function publicKeyOf(key: PublicKeyInput): KeyObject {
  try {
    return loadPublicKey(key)
  } catch (err) {
    if (err instanceof PublicKeyError) throw new VerificationError('key', err.message)
    throw err
  }
}

function keyIdOf(key: KeyObject): string {
  try {
    return chainsKeyId(key)
  } catch (err) {
    if (err instanceof PublicKeyError) throw new VerificationError('key', err.message)
    throw err
  }
}

/**
 * Checks one signature the way cosign's verifiers do for each key type:
 * ECDSA over SHA-256 with a DER signature, RSA PKCS#1 v1.5 over SHA-256.
 * Malformed signatures are just "no". Ed25519 is refused: cosign releases
 * disagree on pure Ed25519 versus Ed25519ph for it (v2.6.5's attest-blob
 * output does not verify as pure Ed25519), so a verdict would be a guess.
 */
function signatureMatches(key: KeyObject, message: Buffer, signature: Buffer): boolean {
  try {
    switch (key.asymmetricKeyType) {
      case 'ec':
        return cryptoVerify('sha256', message, { key, dsaEncoding: 'der' }, signature)
      case 'rsa':
        return cryptoVerify(
          'sha256',
          message,
          { key, padding: constants.RSA_PKCS1_PADDING },
          signature,
        )
      default:
        throw new VerificationError(
          'key',
          `unsupported public key type ${key.asymmetricKeyType ?? '?'}: signatures are verified for ECDSA and RSA keys (cosign generate-key-pair makes ECDSA P-256)`,
        )
    }
  } catch (err) {
    if (err instanceof VerificationError) throw err
    // OpenSSL rejects some malformed DER by throwing rather than returning false.
    return false
  }
}

/** A DSSE envelope whose signature checked out. */
export interface VerifiedDsse {
  payloadType: string
  /** The decoded payload bytes, exactly as signed. */
  payload: Buffer
  /** The signature entry that verified (its keyid as the envelope states it, possibly absent). */
  signature: DsseSignature
  /** Index of that entry in `envelope.signatures`. */
  signatureIndex: number
  /** Chains' keyid of the public key that verified it (SSH SHA256 fingerprint). */
  keyid: string
}

/**
 * Verifies a DSSE envelope: some signature in it must be a valid signature of
 * the PAE of (payloadType, payload) by `publicKey`. The keyid in the envelope
 * is not trusted to pick the signature; every entry is tried.
 */
export function verifyDsse(envelope: DsseEnvelope, publicKey: PublicKeyInput): VerifiedDsse {
  const key = publicKeyOf(publicKey)
  const keyid = keyIdOf(key)
  if (envelope.signatures.length === 0) {
    throw new VerificationError('no-signature', 'DSSE envelope has no signatures')
  }
  const payload = decodeBase64(envelope.payload)
  if (payload === undefined) {
    throw new VerificationError('payload', 'DSSE envelope: payload is not base64')
  }
  const message = pae(envelope.payloadType, payload)
  const rejected: string[] = []
  for (const [signatureIndex, signature] of envelope.signatures.entries()) {
    const bytes = decodeBase64(signature.sig)
    const label = `signatures[${signatureIndex}] (keyid ${signature.keyid || 'none'})`
    if (bytes === undefined) {
      rejected.push(`${label}: not base64`)
      continue
    }
    if (signatureMatches(key, message, bytes)) {
      return { payloadType: envelope.payloadType, payload, signature, signatureIndex, keyid }
    }
    rejected.push(`${label}: does not match`)
  }
  throw new VerificationError(
    'signature',
    `DSSE envelope: no signature verifies with public key ${keyid}: ${rejected.join('; ')}`,
  )
}

/**
 * Verifies an attestation envelope (what a `.att` layer holds) and returns its
 * in-toto Statement. The payload type must be in-toto's, and the payload a
 * Statement.
 */
export function verifyAttestation(
  envelope: DsseEnvelope,
  publicKey: PublicKeyInput,
): InTotoStatement {
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new VerificationError(
      'payload-type',
      `DSSE envelope: payloadType is "${envelope.payloadType}", expected "${IN_TOTO_PAYLOAD_TYPE}"`,
    )
  }
  const { payload } = verifyDsse(envelope, publicKey)
  try {
    return parseStatement(payload)
  } catch (err) {
    if (err instanceof StatementError) {
      throw new VerificationError('payload', `signed attestation payload: ${err.message}`)
    }
    throw err
  }
}

/**
 * Verifies a `.sig` layer: `signatureB64` (the layer's cosign signature
 * annotation) must be a signature of the exact payload bytes by `publicKey`,
 * and the payload must name `expectedDigest` (`sha256:<hex>`) as the image.
 */
export function verifySimpleSignature(
  payload: Uint8Array,
  signatureB64: string,
  publicKey: PublicKeyInput,
  expectedDigest: string,
): SimpleSigningPayload {
  if (!isDigest(expectedDigest)) {
    throw new VerificationError(
      'digest',
      `expected image digest "${expectedDigest}" is not sha256:<64 lowercase hex>`,
    )
  }
  const key = publicKeyOf(publicKey)
  const signature = decodeBase64(signatureB64.trim())
  if (signature === undefined || signature.length === 0) {
    throw new VerificationError('signature', 'image signature is empty or not base64')
  }
  const bytes = Buffer.from(payload)
  if (!signatureMatches(key, bytes, signature)) {
    throw new VerificationError(
      'signature',
      `image signature does not verify with public key ${keyIdOf(key)}`,
    )
  }
  let parsed: SimpleSigningPayload
  try {
    parsed = parseSimpleSigningPayload(bytes)
  } catch (err) {
    if (err instanceof SimpleSigningFormatError) {
      throw new VerificationError('payload', `signed ${err.message}`)
    }
    throw err
  }
  const signedDigest = parsed.critical.image['docker-manifest-digest']
  if (signedDigest !== expectedDigest) {
    throw new VerificationError(
      'digest',
      `image signature is for ${signedDigest}, not for the image ${expectedDigest}`,
    )
  }
  return parsed
}
