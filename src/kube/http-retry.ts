/**
 * Every request to the Kubernetes API goes through here: one answered 429
 * (the server or its priority and fairness throttling) or 5xx (a restarting
 * or overloaded server) is sent again, a few times, after a growing pause or
 * the server's Retry-After, and each retry is logged with what and why. A
 * create (POST) is sent again only after a 429, which the server answers
 * before doing anything; after a 5xx it may have been done. Connection
 * errors are left to the callers' deadline-bound retries (retry.ts).
 */
import { setTimeout as delay } from 'node:timers/promises'
import * as core from '@actions/core'
import {
  IsomorphicFetchHttpLibrary,
  ResponseContext,
  SelfDecodingBody,
  wrapHttpLibrary,
  type HttpLibrary,
  type RequestContext,
} from '@kubernetes/client-node'

/** Tries per request, the first included: at most four pauses of up to MAX_PAUSE_MS. */
const ATTEMPTS = 5
const FIRST_PAUSE_MS = 250
const MAX_PAUSE_MS = 5_000
const RETRIED_5XX = new Set([500, 502, 503, 504])
/** A 500 about the request itself (server-side apply of an object its schema refuses): the same again fails the same. */
const REQUEST_ERROR = /failed to create typed patch object/

export function retryingHttpLibrary(
  log: (line: string) => void = (line) => core.info(line),
  inner: HttpLibrary = new IsomorphicFetchHttpLibrary(),
): HttpLibrary {
  return wrapHttpLibrary({
    async send(request: RequestContext): Promise<ResponseContext> {
      const method = request.getHttpMethod().toString()
      for (let attempt = 1; ; attempt++) {
        const response = await inner.send(request).toPromise()
        const status = response.httpStatusCode
        const retried = status === 429 || (RETRIED_5XX.has(status) && method !== 'POST')
        if (!retried || attempt >= ATTEMPTS) return response
        const text = await response.body.text()
        const message = statusMessage(text)
        if (REQUEST_ERROR.test(message)) {
          // The body was read: the caller gets the same bytes.
          const body = new SelfDecodingBody(Promise.resolve(Buffer.from(text)))
          return new ResponseContext(status, response.headers, body)
        }
        const pause = pauseBefore(attempt, response.headers['retry-after'])
        log(
          `Kubernetes API ${method} ${new URL(request.getUrl()).pathname}: HTTP ${status}${message ? `: ${message}` : ''}; retry ${attempt} of ${ATTEMPTS - 1} in ${(pause / 1000).toFixed(1)} s`,
        )
        await delay(pause)
      }
    },
  })
}

/** Exponential from FIRST_PAUSE_MS, or the server's Retry-After (seconds), capped. */
function pauseBefore(attempt: number, retryAfter: string | undefined): number {
  const asked = Number(retryAfter)
  const pause =
    retryAfter && Number.isFinite(asked) ? asked * 1000 : FIRST_PAUSE_MS * 2 ** (attempt - 1)
  return Math.min(MAX_PAUSE_MS, Math.max(0, pause))
}

/** The message of the Status object the server answered with, if it is one. */
function statusMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: unknown }
    return typeof parsed.message === 'string' ? parsed.message.split('\n')[0]!.slice(0, 200) : ''
  } catch {
    return ''
  }
}
