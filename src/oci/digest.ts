import { createHash } from 'node:crypto'
import { UserError } from '../errors.js'
import type { Digest } from './types.js'

const digestPattern = /^sha256:[a-f0-9]{64}$/

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && digestPattern.test(value)
}

export function sha256Digest(bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Content that does not hash to the digest it was fetched (or announced) by. */
export class DigestMismatchError extends UserError {
  override name = 'DigestMismatchError'
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${what}: content has digest ${actual}, expected ${expected}`)
  }
}

/**
 * Checks that bytes are what the digest (and size, when known) promises.
 * Everything fetched by digest goes through here before it is used.
 */
export function verifyContent(
  bytes: Uint8Array,
  expected: string,
  what: string,
  expectedSize?: number,
): Digest {
  if (!isDigest(expected)) {
    throw new UserError(`${what}: unsupported digest ${expected} (expected sha256:<64 hex>)`)
  }
  // Size first: cheaper, and says more than two unrelated hashes.
  if (expectedSize !== undefined && bytes.byteLength !== expectedSize) {
    throw new UserError(`${what}: content is ${bytes.byteLength} bytes, expected ${expectedSize}`)
  }
  const actual = sha256Digest(bytes)
  if (actual !== expected) throw new DigestMismatchError(what, expected, actual)
  return actual
}
