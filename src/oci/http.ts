import { setTimeout as delay } from 'node:timers/promises'
import { UserError } from '../errors.js'
import type { RegistryErrorBody } from './types.js'

/** How often and how patiently a request is retried on network errors, 429 and 5xx. */
export interface RetryPolicy {
  /** Total tries, the first included. */
  attempts: number
  baseDelayMs: number
  maxDelayMs: number
  /** Told of each retry: what is retried and why (the run's log). */
  log?: (line: string) => void
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 4, baseDelayMs: 200, maxDelayMs: 3_000 }

/** What a request is, for error messages: never the query string (upload state, tokens). */
export interface RequestContext {
  registry: string
  method: string
  path: string
}

/** A failed registry request: names the registry, the method and path, and the HTTP status. */
export class RegistryError extends UserError {
  override name = 'RegistryError'
  constructor(
    readonly context: RequestContext,
    readonly status: number | undefined,
    readonly code: string | undefined,
    detail: string,
  ) {
    const status_ = status === undefined ? '' : `HTTP ${status}${code ? ` ${code}` : ''}: `
    super(`registry ${context.registry}: ${context.method} ${context.path}: ${status_}${detail}`)
  }
}

const retryableStatus = new Set([408, 429, 500, 502, 503, 504])

/** Delay before retry number `retry` (1-based): exponential, capped, honouring Retry-After. */
export function backoffDelay(
  retry: number,
  policy: RetryPolicy,
  retryAfter?: string | null,
): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1))
  if (retryAfter) {
    const seconds = Number(retryAfter)
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - Date.now()
    if (Number.isFinite(ms) && ms > 0) return Math.min(policy.maxDelayMs, ms)
  }
  // Jitter so that concurrent requests to a struggling registry spread out.
  return Math.round(exponential * (0.5 + Math.random() * 0.5))
}

/** One line for a fetch failure: undici hides the socket error in `cause`. */
export function networkErrorText(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out'
    const cause = err.cause
    if (cause instanceof Error) {
      const code = (cause as NodeJS.ErrnoException).code
      return code && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message
    }
    return err.message
  }
  return String(err)
}

/**
 * fetch with retries on network errors, 408, 429 and 5xx. The last response is
 * returned whatever its status; the caller decides what it means. Bodies must
 * be re-sendable (bytes, not streams).
 */
export async function fetchWithRetry(
  url: string,
  init: RequestInit & { body?: Uint8Array | string | null },
  policy: RetryPolicy,
  context: RequestContext,
  timeoutMs: number,
): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    let response: Response
    try {
      response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) })
    } catch (err) {
      if (attempt >= policy.attempts) {
        throw new RegistryError(
          context,
          undefined,
          undefined,
          `${networkErrorText(err)} (after ${attempt} attempt${attempt === 1 ? '' : 's'})`,
        )
      }
      const wait = backoffDelay(attempt, policy)
      retrying(policy, context, networkErrorText(err), attempt, wait)
      await delay(wait)
      continue
    }
    if (!retryableStatus.has(response.status) || attempt >= policy.attempts) return response
    await response.body?.cancel()
    const wait = backoffDelay(attempt, policy, response.headers.get('retry-after'))
    retrying(policy, context, `HTTP ${response.status}`, attempt, wait)
    await delay(wait)
  }
}

function retrying(
  policy: RetryPolicy,
  context: RequestContext,
  why: string,
  attempt: number,
  waitMs: number,
): void {
  policy.log?.(
    `registry ${context.registry}: ${context.method} ${context.path}: ${why}; retry ${attempt} of ${policy.attempts - 1} in ${(waitMs / 1000).toFixed(1)} s`,
  )
}

/** Reads a body, refusing more than `limit` bytes (manifests, error bodies, tokens). */
export async function readBody(
  response: Response,
  limit: number,
  context: RequestContext,
): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? NaN)
  if (declared > limit) {
    await response.body?.cancel()
    throw new RegistryError(
      context,
      response.status,
      undefined,
      `response of ${declared} bytes exceeds the ${limit} byte limit`,
    )
  }
  if (!response.body) return new Uint8Array()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for await (const chunk of response.body) {
      total += chunk.byteLength
      if (total > limit) {
        // Leaving the loop by throwing cancels the stream.
        throw new RegistryError(
          context,
          response.status,
          undefined,
          `response exceeds the ${limit} byte limit`,
        )
      }
      chunks.push(chunk)
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err
    throw new RegistryError(
      context,
      response.status,
      undefined,
      `reading the response failed: ${networkErrorText(err)}`,
    )
  }
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}

/** Turns a non-success response into a RegistryError, using the registry's error body if any. */
export async function errorFromResponse(
  response: Response,
  context: RequestContext,
  what?: string,
): Promise<RegistryError> {
  let code: string | undefined
  let detail = response.statusText || 'request failed'
  if (context.method !== 'HEAD') {
    try {
      const text = new TextDecoder().decode(await readBody(response, 64 * 1024, context))
      const body = JSON.parse(text) as RegistryErrorBody
      const first = body.errors?.[0]
      if (first) {
        code = first.code
        if (first.message) detail = first.message
      }
    } catch {
      // Not a distribution-spec error body (proxies answer with HTML): keep the status text.
    }
  } else {
    await response.body?.cancel()
  }
  return new RegistryError(context, response.status, code, what ? `${what}: ${detail}` : detail)
}
