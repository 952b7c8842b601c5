import { setTimeout as delay } from 'node:timers/promises'
import * as core from '@actions/core'
import { apiMessage, statusOf } from './client.js'

/**
 * Whether an API call may succeed if repeated: the server is busy (429, 5xx),
 * a webhook it calls is not serving yet, an object changed under us (409), a
 * just-created CRD is not in discovery yet, or the connection failed.
 */
export function isTransient(err: unknown): boolean {
  const status = statusOf(err)
  const message = apiMessage(err)
  // Server-side apply reports an object that does not fit its schema as a 500.
  if (/failed to create typed patch object/.test(message)) return false
  if (status === 409 || status === 429 || (status !== undefined && status >= 500)) return true
  if (/failed calling webhook|no endpoints available for service|connection refused/i.test(message))
    return true
  if (
    /Unrecognized API version and kind|the server could not find the requested resource/.test(
      message,
    )
  )
    return true
  const code = (err as { code?: unknown; cause?: { code?: unknown } }).cause?.code
  return (
    typeof code === 'string' &&
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|UND_ERR_SOCKET)$/.test(code)
  )
}

/**
 * Runs `call` until it succeeds, a non-transient error occurs, or `deadline`
 * (epoch ms) passes; waits grow from 200 ms to 5 s between tries, and each
 * retry is logged with `what` was tried and why it failed. The last error is
 * rethrown.
 */
export async function withRetry<T>(
  call: () => Promise<T>,
  deadline: number,
  what: string,
  log: (line: string) => void = (line) => core.info(line),
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call()
    } catch (err) {
      const wait = Math.min(5_000, 200 * 2 ** attempt)
      if (!isTransient(err) || Date.now() + wait > deadline) throw err
      log(`${what}: ${retryReason(err)}; retrying in ${wait / 1000} s`)
      await delay(wait)
    }
  }
}

/** The status and the server's message, one line, not too long for a log. */
function retryReason(err: unknown): string {
  const text = apiMessage(err).split('\n')[0]!
  return text.length > 200 ? `${text.slice(0, 199)}…` : text
}
