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
