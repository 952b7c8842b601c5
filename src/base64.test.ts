import { describe, expect, it } from 'vitest'
import { decodeBase64 } from './base64.js'

describe('decodeBase64', () => {
  it('accepts standard and URL-safe base64, padded or not', () => {
    expect(decodeBase64('+/8=')).toEqual(Buffer.from([0xfb, 0xff]))
    expect(decodeBase64('-_8')).toEqual(Buffer.from([0xfb, 0xff]))
    expect(decodeBase64('')).toEqual(Buffer.alloc(0))
  })

  it('rejects what Buffer.from would silently skip or truncate', () => {
    for (const bad of ['ab!c', 'ab c', 'a', 'abcde', '+_==', 'ab=c', 'abc==']) {
      expect(decodeBase64(bad), bad).toBeUndefined()
    }
  })
})
