/**
 * Telling a passing registry or network hiccup from a real outcome, so ec is
 * run a second time only when that could change the answer.
 *
 * ec reaches registries through go-containerregistry, which already retries
 * 408, 429 and 5xx a few times; what is left after that shows up in one of two
 * places: in stderr when ec stops without a report, or inside the report as a
 * failed built-in check (`builtin.image.accessible` "Image URL is not
 * accessible: <error>", the signature checks "... Error: <error>").
 */
import type { EcSummary } from './report.js'

/**
 * Error texts of conditions that pass: Go's network errors, go-containerregistry's
 * `unexpected status code <n> <text>` for the statuses it treats as temporary,
 * and the registry error codes it treats as temporary (`CODE: message`).
 * Not here on purpose: `no such host` (a wrong name stays wrong) and
 * `context deadline exceeded` (ec's own --timeout: a second run would wait as long).
 */
const TRANSIENT: readonly RegExp[] = [
  /connection refused/i,
  /connection reset by peer/i,
  /i\/o timeout/i,
  /TLS handshake timeout/i,
  /unexpected EOF/,
  /Client\.Timeout exceeded/,
  /server misbehaving/,
  /unexpected status code (408|429|500|502|503|504)\b/,
  /\b(TOOMANYREQUESTS|UNAVAILABLE|UNKNOWN): /,
]

/** The first line of `text` that reads like a registry or network error that may pass. */
export function transientError(text: string): string | undefined {
  return text
    .split('\n')
    .map((line) => line.trim())
    .find((line) => TRANSIENT.some((pattern) => pattern.test(line)))
}

/**
 * Why a failed report may be a hiccup rather than a verdict: only when every
 * violation is a built-in check (image access, signatures) whose message
 * carries a transient error. A policy rule's violation is an answer.
 */
export function transientViolation(summary: EcSummary): string | undefined {
  if (summary.success || summary.violations.length === 0) return undefined
  let reason: string | undefined
  for (const violation of summary.violations) {
    if (!violation.code?.startsWith('builtin.')) return undefined
    const error = transientError(violation.msg)
    if (!error) return undefined
    reason ??= error
  }
  return reason
}
