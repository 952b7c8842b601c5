import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair as generateNodeKeyPair,
  randomBytes,
  scrypt,
  type KeyObject,
} from 'node:crypto'
import { promisify } from 'node:util'
import { secretbox } from '@noble/ciphers/salsa.js'
import { UserError } from '../errors.js'
import { maskSecret } from '../secrets.js'
import { decodeBase64 } from '../base64.js'
import { decodePem, encodePem, PemError } from './pem.js'

/** Label cosign writes since v1.x (sigstore's shared key format). */
export const PRIVATE_KEY_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY'
/** Label of keys written by older cosign; still read. */
export const LEGACY_PRIVATE_KEY_LABEL = 'ENCRYPTED COSIGN PRIVATE KEY'
export const PUBLIC_KEY_LABEL = 'PUBLIC KEY'

/** The scrypt cost parameters sigstore's key decryption accepts (always with r=8, p=1). */
export const SCRYPT_NS = [32768, 65536, 131072] as const
export type ScryptN = (typeof SCRYPT_NS)[number]
const SCRYPT_R = 8
const SCRYPT_P = 1
const SALT_BYTES = 32
const NONCE_BYTES = 24
const KEY_BYTES = 32
// Poly1305 tag that secretbox puts in front of the ciphertext.
const TAG_BYTES = 16

/** The JSON body of an encrypted cosign key, field order as cosign writes it. */
export interface EncryptedKeyEnvelope {
  kdf: ScryptKdf
  cipher: SecretboxCipher
  /** base64 of the 16-byte Poly1305 tag followed by the encrypted PKCS#8 DER. */
  ciphertext: string
}
export interface ScryptKdf {
  name: 'scrypt'
  params: { N: number; r: number; p: number }
  /** base64 of 32 random bytes. */
  salt: string
}
export interface SecretboxCipher {
  name: 'nacl/secretbox'
  /** base64 of 24 random bytes. */
  nonce: string
}

export interface CosignKeyPair {
  /** PEM `ENCRYPTED SIGSTORE PRIVATE KEY`, what goes into `cosign.key`. */
  privateKeyPem: string
  /** SPKI PEM `PUBLIC KEY`, what goes into `cosign.pub`. */
  publicKeyPem: string
  /** What goes into `cosign.password` (as bytes, no newline). */
  password: string
}

export interface OpenedKey {
  privateKey: KeyObject
  publicKey: KeyObject
  publicKeyPem: string
}

/** A cosign key that cannot be used: says why, never quotes the password or key material. */
export class KeyError extends UserError {
  override name = 'KeyError'
}

const scryptAsync = promisify(scrypt) as (
  password: Buffer,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>
const generateEcKeyPair = promisify(generateNodeKeyPair)

const WHAT = 'cosign private key'
const ACCEPTED_PARAMS = `N ${SCRYPT_NS.join(', ')} with r=${SCRYPT_R} and p=${SCRYPT_P}`

/**
 * Generates an ECDSA P-256 key pair in cosign's encrypted key format, as
 * `cosign generate-key-pair` writes it. Without a password (or with an empty
 * one, which is what an unset action input gives) a random one is made.
 * N defaults to 32768, the value older Chains releases can still decrypt.
 */
export async function generateKeyPair(
  options: { password?: string; scryptN?: ScryptN } = {},
): Promise<CosignKeyPair> {
  const scryptN = options.scryptN ?? 32768
  if (!(SCRYPT_NS as readonly number[]).includes(scryptN)) {
    throw new KeyError(`scrypt N=${String(scryptN)} is not accepted; use ${SCRYPT_NS.join(', ')}`)
  }
  // 256 random bits, base64url: safe in env vars, YAML and URLs, no newline.
  const password = options.password || randomBytes(32).toString('base64url')
  maskSecret(password)

  const { privateKey, publicKey } = await generateEcKeyPair('ec', { namedCurve: 'P-256' })
  const der = privateKey.export({ type: 'pkcs8', format: 'der' })
  const salt = randomBytes(SALT_BYTES)
  const nonce = randomBytes(NONCE_BYTES)
  const key = await deriveKey(password, salt, scryptN)
  let sealed: Uint8Array
  try {
    sealed = secretbox(key, nonce).seal(der)
  } finally {
    key.fill(0)
    der.fill(0)
  }
  const envelope: EncryptedKeyEnvelope = {
    kdf: {
      name: 'scrypt',
      params: { N: scryptN, r: SCRYPT_R, p: SCRYPT_P },
      salt: salt.toString('base64'),
    },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(sealed).toString('base64'),
  }
  const privateKeyPem = encodePem(PRIVATE_KEY_LABEL, Buffer.from(JSON.stringify(envelope)))
  maskSecret(privateKeyPem)
  return { privateKeyPem, publicKeyPem: publicKeyPemOf(publicKey), password }
}

/**
 * Decrypts a cosign encrypted private key (either label) with its password and
 * checks it is the ECDSA P-256 key Chains signs with.
 */
export async function openPrivateKey(pem: string, password: string): Promise<OpenedKey> {
  maskSecret(password)
  maskSecret(pem)
  const envelope = parseEncryptedKey(pem)
  const { salt, nonce, ciphertext, N } = envelope

  const key = await deriveKey(password, salt, N)
  let der: Uint8Array
  try {
    der = secretbox(key, nonce).open(ciphertext)
  } catch {
    throw new KeyError(
      `cannot decrypt the ${WHAT}: wrong password, or the key was altered (secretbox authentication failed)`,
    )
  } finally {
    key.fill(0)
  }

  let privateKey: KeyObject
  try {
    // A view, not a copy, so the fill below clears the only plaintext copy we hold.
    const view = Buffer.from(der.buffer, der.byteOffset, der.byteLength)
    privateKey = createPrivateKey({ key: view, format: 'der', type: 'pkcs8' })
  } catch {
    throw new KeyError(`the ${WHAT} decrypts, but does not hold a PKCS#8 private key`)
  } finally {
    der.fill(0)
  }
  const type = privateKey.asymmetricKeyType ?? 'unknown'
  const curve = privateKey.asymmetricKeyDetails?.namedCurve
  if (type !== 'ec' || curve !== 'prime256v1') {
    const found =
      type === 'ec' ? `an EC key on ${curve ?? 'an unnamed curve'}` : `a key of type '${type}'`
    throw new KeyError(
      `the ${WHAT} decrypts, but is ${found}; only ECDSA P-256 keys (as cosign generate-key-pair makes) are supported`,
    )
  }
  const publicKey = createPublicKey(privateKey)
  return { privateKey, publicKey, publicKeyPem: publicKeyPemOf(publicKey) }
}

/** SPKI PEM `PUBLIC KEY` of a key (the public half when given a private key), as cosign writes it. */
export function publicKeyPemOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  if (pub.type !== 'public') throw new TypeError('publicKeyPemOf needs an asymmetric key')
  return encodePem(PUBLIC_KEY_LABEL, pub.export({ type: 'spki', format: 'der' }))
}

interface ParsedKey {
  N: ScryptN
  salt: Buffer
  nonce: Buffer
  ciphertext: Buffer
}

/** Checks label and envelope before any expensive scrypt work. */
function parseEncryptedKey(pem: string): ParsedKey {
  let block
  try {
    block = decodePem(pem, WHAT)
  } catch (err) {
    if (err instanceof PemError) throw new KeyError(err.message, { cause: err })
    throw err
  }
  if (block.label !== PRIVATE_KEY_LABEL && block.label !== LEGACY_PRIVATE_KEY_LABEL) {
    throw new KeyError(
      `${WHAT}: PEM label is ${describe(block.label)}, expected '${PRIVATE_KEY_LABEL}' or '${LEGACY_PRIVATE_KEY_LABEL}' (an encrypted key from cosign generate-key-pair)`,
    )
  }
  const notEnvelope = `${WHAT}: the PEM body is not cosign's encrypted key JSON`
  let json: unknown
  try {
    json = JSON.parse(block.body.toString('utf8'))
  } catch {
    // JSON.parse messages quote the input: do not pass them on.
    throw new KeyError(notEnvelope)
  }
  if (!isObject(json) || !isObject(json.kdf) || !isObject(json.cipher)) {
    throw new KeyError(`${notEnvelope} (needs 'kdf', 'cipher' and 'ciphertext')`)
  }
  const { kdf, cipher } = json
  if (kdf.name !== 'scrypt') {
    throw new KeyError(
      `${WHAT}: key derivation ${describe(kdf.name)} is not supported, only 'scrypt'`,
    )
  }
  if (cipher.name !== 'nacl/secretbox') {
    throw new KeyError(
      `${WHAT}: cipher ${describe(cipher.name)} is not supported, only 'nacl/secretbox'`,
    )
  }
  const params = isObject(kdf.params) ? kdf.params : {}
  const { N, r, p } = params
  if (!(SCRYPT_NS as readonly unknown[]).includes(N) || r !== SCRYPT_R || p !== SCRYPT_P) {
    throw new KeyError(
      `${WHAT}: scrypt parameters N=${describe(N)}, r=${describe(r)}, p=${describe(p)} are not accepted; accepted: ${ACCEPTED_PARAMS}`,
    )
  }
  const salt = typeof kdf.salt === 'string' ? decodeBase64(kdf.salt) : undefined
  if (!salt || salt.length === 0)
    throw new KeyError(`${WHAT}: the scrypt salt is missing or not base64`)
  const nonce = typeof cipher.nonce === 'string' ? decodeBase64(cipher.nonce) : undefined
  if (!nonce || nonce.length !== NONCE_BYTES) {
    throw new KeyError(`${WHAT}: the secretbox nonce must be ${NONCE_BYTES} bytes of base64`)
  }
  const ciphertext = typeof json.ciphertext === 'string' ? decodeBase64(json.ciphertext) : undefined
  if (!ciphertext || ciphertext.length <= TAG_BYTES) {
    throw new KeyError(`${WHAT}: the ciphertext is missing, not base64 or too short`)
  }
  return { N: N as ScryptN, salt, nonce, ciphertext }
}

async function deriveKey(password: string, salt: Buffer, N: ScryptN): Promise<Buffer> {
  // scrypt needs 128*N*r bytes (128 MiB at N=131072), over node's 32 MiB default cap.
  const maxmem = 2 * 128 * N * SCRYPT_R
  return scryptAsync(Buffer.from(password, 'utf8'), salt, KEY_BYTES, {
    N,
    r: SCRYPT_R,
    p: SCRYPT_P,
    maxmem,
  })
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// A short, printable rendering of a value read from the envelope (never key material).
function describe(v: unknown): string {
  const s = v === undefined ? 'missing' : typeof v === 'string' ? `'${v}'` : JSON.stringify(v)
  const printable = s.replace(/[^\x20-\x7e]/g, '?')
  return printable.length > 40 ? `${printable.slice(0, 37)}...` : printable
}
