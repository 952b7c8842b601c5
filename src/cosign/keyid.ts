import { createHash, createPublicKey, type KeyObject } from 'node:crypto'
import { UserError } from '../errors.js'

/** A public key as PEM (SPKI `PUBLIC KEY`, as in cosign.pub) or an already loaded key. */
export type PublicKeyInput = string | Buffer | KeyObject

/** A public key that cannot be loaded or has a type we do not handle. */
export class PublicKeyError extends UserError {
  override name = 'PublicKeyError'
}

/** Loads a public key; a private key is reduced to its public half. */
export function loadPublicKey(key: PublicKeyInput): KeyObject {
  if (typeof key !== 'string' && !Buffer.isBuffer(key) && key.type === 'public') return key
  try {
    return createPublicKey(key)
  } catch (err) {
    throw new PublicKeyError(`the public key is not a PEM public key: ${(err as Error).message}`)
  }
}

// SSH names of the NIST curves, with their coordinate sizes in bytes.
const sshCurves: Record<string, { name: string; size: number }> = {
  'P-256': { name: 'nistp256', size: 32 },
  'P-384': { name: 'nistp384', size: 48 },
  'P-521': { name: 'nistp521', size: 66 },
}

/** SSH wire "string": uint32 big-endian length, then the bytes. */
function sshString(bytes: Buffer | string): Buffer {
  const body = typeof bytes === 'string' ? Buffer.from(bytes, 'ascii') : bytes
  const length = Buffer.alloc(4)
  length.writeUInt32BE(body.length)
  return Buffer.concat([length, body])
}

/** SSH "mpint" of a non-negative big-endian integer: minimal bytes, a 0x00 in front when the top bit is set. */
function sshMpint(magnitude: Buffer): Buffer {
  let start = 0
  while (start < magnitude.length && magnitude[start] === 0) start++
  const bytes = magnitude.subarray(start)
  const first = bytes[0]
  return sshString(
    first !== undefined && first & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes,
  )
}

function jwkBytes(value: string | undefined, what: string): Buffer {
  if (value === undefined) throw new PublicKeyError(`the public key has no ${what}`)
  return Buffer.from(value, 'base64url')
}

/**
 * The SSH wire-format public key blob (RFC 4253 / 5656 / 8709) of an ECDSA
 * (P-256, P-384, P-521), Ed25519 or RSA key: the bytes SSH fingerprints hash.
 */
export function sshPublicKeyBlob(key: PublicKeyInput): Buffer {
  const publicKey = loadPublicKey(key)
  const jwk = publicKey.export({ format: 'jwk' })
  if (jwk.kty === 'EC') {
    const curve = jwk.crv === undefined ? undefined : sshCurves[jwk.crv]
    if (curve === undefined) throw new PublicKeyError(`unsupported ECDSA curve ${jwk.crv ?? '?'}`)
    const x = jwkBytes(jwk.x, 'x coordinate')
    const y = jwkBytes(jwk.y, 'y coordinate')
    if (x.length !== curve.size || y.length !== curve.size) {
      throw new PublicKeyError(`the ${jwk.crv} key has malformed coordinates`)
    }
    // Q as an uncompressed SEC1 point: 0x04 || X || Y.
    const point = Buffer.concat([Buffer.from([0x04]), x, y])
    return Buffer.concat([
      sshString(`ecdsa-sha2-${curve.name}`),
      sshString(curve.name),
      sshString(point),
    ])
  }
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    return Buffer.concat([sshString('ssh-ed25519'), sshString(jwkBytes(jwk.x, 'x'))])
  }
  if (jwk.kty === 'RSA') {
    return Buffer.concat([
      sshString('ssh-rsa'),
      sshMpint(jwkBytes(jwk.e, 'exponent')),
      sshMpint(jwkBytes(jwk.n, 'modulus')),
    ])
  }
  throw new PublicKeyError(
    `unsupported public key type ${publicKey.asymmetricKeyType ?? '?'} (expected ECDSA, Ed25519 or RSA)`,
  )
}

/**
 * The keyid Tekton Chains puts in its DSSE signatures: the SSH SHA256
 * fingerprint of the public key, `SHA256:` + unpadded base64 of sha256(blob),
 * the same text as `ssh-keygen -l -E sha256` prints.
 */
export function chainsKeyId(key: PublicKeyInput): string {
  const digest = createHash('sha256').update(sshPublicKeyBlob(key)).digest('base64')
  return `SHA256:${digest.replace(/=+$/, '')}`
}
