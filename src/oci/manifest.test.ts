import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { DigestMismatchError, isDigest, sha256Digest, verifyContent } from './digest.js'
import { bareMediaType, parseManifest } from './manifest.js'
import { MediaType, isIndex } from './types.js'

const enc = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))
const d = (n: number): string => `sha256:${String(n).repeat(64).slice(0, 64)}`

describe('digest verification', () => {
  const bytes = new TextEncoder().encode('iris')
  const good = `sha256:${createHash('sha256').update('iris').digest('hex')}`

  it('accepts exactly the bytes a digest names', () => {
    expect(sha256Digest(bytes)).toBe(good)
    expect(verifyContent(bytes, good, 'blob', 4)).toBe(good)
  })

  it('rejects other bytes, another size, and non-sha256 digests', () => {
    const altered = Uint8Array.from(bytes)
    altered[0]! ^= 1
    expect(() => verifyContent(altered, good, 'GET /v2/x/blobs')).toThrow(DigestMismatchError)
    expect(() => verifyContent(altered, good, 'GET /v2/x/blobs')).toThrow(
      `GET /v2/x/blobs: content has digest ${sha256Digest(altered)}, expected ${good}`,
    )
    expect(() => verifyContent(bytes, good, 'blob', 5)).toThrow(
      'blob: content is 4 bytes, expected 5',
    )
    expect(() => verifyContent(bytes, 'sha512:abc', 'blob')).toThrow(
      /unsupported digest sha512:abc/,
    )
    expect(isDigest(good.toUpperCase())).toBe(false)
  })
})

describe('parseManifest', () => {
  const descriptor = { mediaType: MediaType.ociLayerTar, digest: d(1), size: 3 }

  it('takes the type from the document, then Content-Type, then the shape', () => {
    const body = { schemaVersion: 2, config: descriptor, layers: [descriptor] }
    expect(
      parseManifest(
        enc({ ...body, mediaType: MediaType.dockerManifest }),
        MediaType.ociManifest,
        'm',
      ).mediaType,
    ).toBe(MediaType.dockerManifest)
    expect(
      parseManifest(enc(body), `${MediaType.dockerManifest}; charset=utf-8`, 'm').mediaType,
    ).toBe(MediaType.dockerManifest)
    expect(parseManifest(enc(body), 'application/json', 'm').mediaType).toBe(MediaType.ociManifest)
    const index = parseManifest(enc({ schemaVersion: 2, manifests: [descriptor] }), null, 'm')
    expect(index.mediaType).toBe(MediaType.ociIndex)
    expect(isIndex(index.manifest)).toBe(true)
  })

  it('rejects what is not a schema 2 manifest, naming the problem', () => {
    expect(() => parseManifest(new TextEncoder().encode('{'), null, 'GET x')).toThrow(
      /^GET x: manifest is not valid JSON/,
    )
    expect(() => parseManifest(enc({ schemaVersion: 1 }), null, 'm')).toThrow(
      /schemaVersion 1 is not supported/,
    )
    expect(() =>
      parseManifest(enc({ schemaVersion: 2, mediaType: 'text/plain', layers: [] }), null, 'm'),
    ).toThrow(/unsupported manifest media type text\/plain/)
    expect(() => parseManifest(enc({ schemaVersion: 2, layers: [] }), null, 'm')).toThrow(
      /m: config: not a descriptor/,
    )
    expect(() =>
      parseManifest(
        enc({ schemaVersion: 2, config: descriptor, layers: [{ ...descriptor, digest: 'md5:x' }] }),
        null,
        'm',
      ),
    ).toThrow(/m: layers\[0\]: digest "md5:x" is not sha256/)
    expect(() =>
      parseManifest(
        enc({ schemaVersion: 2, config: { ...descriptor, size: -1 }, layers: [] }),
        null,
        'm',
      ),
    ).toThrow(/config: size -1/)
    expect(() =>
      parseManifest(
        enc({ schemaVersion: 2, config: descriptor, layers: [], annotations: { a: 1 } }),
        null,
        'm',
      ),
    ).toThrow(/annotations must map strings to strings/)
    expect(() =>
      parseManifest(enc({ schemaVersion: 2, mediaType: MediaType.ociIndex }), null, 'm'),
    ).toThrow(/index has no manifests list/)
  })

  it('strips media type parameters', () => {
    expect(bareMediaType('Application/JSON; charset=utf-8')).toBe('application/json')
    expect(bareMediaType(null)).toBeUndefined()
  })
})
