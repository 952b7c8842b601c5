import { describe, expect, it } from 'vitest'
import { formatDuration, parseDuration } from './duration.js'

describe('parseDuration', () => {
  it.each([
    ['30m', 30 * 60_000],
    ['1h', 3_600_000],
    ['1h30m', 90 * 60_000],
    ['90s', 90_000],
    ['2h0m5s', 7_205_000],
  ])('reads %s', (text, ms) => expect(parseDuration(text)).toBe(ms))

  it.each(['', 'ten minutes', '30', '30min', '1m1h', '-5m', '1.5h'])('rejects %j', (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  )
})

describe('formatDuration', () => {
  it.each([
    [1234, '1.2s'],
    [184_000, '3m04s'],
    [3_720_000, '1h02m'],
  ])('formats %d ms as %s', (ms, text) => expect(formatDuration(ms)).toBe(text))
})
