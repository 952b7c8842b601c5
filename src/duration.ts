const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000 } as const

/**
 * Parses a duration such as `30m`, `1h`, `1h30m` or `90s` (hours, minutes,
 * seconds, in that order; Go's spelling, which Tekton and kubectl users know).
 * Returns milliseconds, or undefined when the text is not such a duration.
 */
export function parseDuration(text: string): number | undefined {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim())
  if (!match || text.trim() === '') return undefined
  const [, h = '0', m = '0', s = '0'] = match
  return Number(h) * UNIT_MS.h + Number(m) * UNIT_MS.m + Number(s) * UNIT_MS.s
}

/** Formats milliseconds for logs: `1.2s`, `3m04s`, `1h02m`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  const totalSeconds = Math.round(ms / 1000)
  const hours = Math.floor(totalSeconds / 3600)
  const minutes = Math.floor((totalSeconds % 3600) / 60)
  const seconds = totalSeconds % 60
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, '0')}m`
  return `${minutes}m${String(seconds).padStart(2, '0')}s`
}
