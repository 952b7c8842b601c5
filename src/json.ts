/** A JSON object (not null, not an array), for checking untrusted documents field by field. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Parses JSON from bytes or text; on malformed input throws what `fail` makes
 * of the parser's reason, so each format reports in its own words.
 */
export function parseJson(json: Uint8Array | string, fail: (reason: string) => Error): unknown {
  const text = typeof json === 'string' ? json : Buffer.from(json).toString('utf8')
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw fail((err as Error).message)
  }
}
