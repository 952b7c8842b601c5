import { describe, expect, it } from 'vitest'
import { InputError } from '../errors.js'
import {
  formatReference,
  manifestTarget,
  parseReference,
  registryApiHost,
  repositoryOf,
  withDigest,
  withTag,
} from './reference.js'

const hex = 'a'.repeat(64)
const digest = `sha256:${hex}`

describe('parseReference', () => {
  it.each([
    ['alpine', 'docker.io', 'library/alpine', undefined, undefined],
    ['alpine:3.20', 'docker.io', 'library/alpine', '3.20', undefined],
    ['docker.io/alpine', 'docker.io', 'library/alpine', undefined, undefined],
    ['index.docker.io/library/alpine:edge', 'docker.io', 'library/alpine', 'edge', undefined],
    ['registry-1.docker.io/bitnami/redis', 'docker.io', 'bitnami/redis', undefined, undefined],
    ['mmortari/ml-iris:data', 'docker.io', 'mmortari/ml-iris', 'data', undefined],
    ['quay.io/mmortari/ml-iris:data', 'quay.io', 'mmortari/ml-iris', 'data', undefined],
    ['registry.local:5000/iris/model:v1', 'registry.local:5000', 'iris/model', 'v1', undefined],
    ['127.0.0.1:41234/a/b/c', '127.0.0.1:41234', 'a/b/c', undefined, undefined],
    ['localhost/model', 'localhost', 'model', undefined, undefined],
    ['localhost:5000/model:latest', 'localhost:5000', 'model', 'latest', undefined],
    ['[::1]:5000/model', '[::1]:5000', 'model', undefined, undefined],
    ['Registry/model', 'Registry', 'model', undefined, undefined],
    [`ghcr.io/o/r@${digest}`, 'ghcr.io', 'o/r', undefined, digest],
    [`ghcr.io/o/r:v2@${digest}`, 'ghcr.io', 'o/r', 'v2', digest],
    [`alpine@${digest}`, 'docker.io', 'library/alpine', undefined, digest],
    ['ghcr.io/o/my_repo.x__y-z---w:_T.a-g', 'ghcr.io', 'o/my_repo.x__y-z---w', '_T.a-g', undefined],
    // A single component with a port-like suffix is a repository and a tag, as in docker.
    ['localhost:5000', 'docker.io', 'library/localhost', '5000', undefined],
  ])('%s', (text, registry, repository, tag, dig) => {
    const ref = parseReference(text)
    expect(ref).toEqual({
      registry,
      repository,
      ...(tag !== undefined && { tag }),
      ...(dig !== undefined && { digest: dig }),
    })
  })

  it.each([
    ['', /an OCI reference is required/],
    ['https://quay.io/a/b', /remove the 'https:\/\/' prefix/],
    ['quay.io/a/b c', /whitespace/],
    ['quay.io/Mmortari/iris', /must be lowercase/],
    ['UPPER', /must be lowercase/],
    ['quay.io/a//b', /empty path component/],
    ['quay.io/a/-b', /repository component '-b'/],
    ['quay.io/a/b_', /repository component 'b_'/],
    ['quay.io/a/b:', /tag '' must be/],
    ['quay.io/a/b:.hidden', /tag '.hidden' must be/],
    [`quay.io/a/b:${'t'.repeat(129)}`, /tag 't+' must be 1-128/],
    ['quay.io/a/b@sha256:abc', /digest 'sha256:abc' must be sha256: followed by 64/],
    [`quay.io/a/b@sha512:${'a'.repeat(128)}`, /digest 'sha512:/],
    [`quay.io/a/b@sha256:${'A'.repeat(64)}`, /64 lowercase hex/],
    [`quay.io/a/b@${digest}@${digest}`, /digest/],
    ['registry.local:99999/a', /invalid port '99999'/],
    ['registry.local:http/a', /invalid port 'http'/],
    ['-bad.host/a', /invalid registry host '-bad.host'/],
    ['quay..io/a', /invalid registry host 'quay..io'/],
    [':5000/a', /invalid registry host ''/],
    [':tag', /repository name is missing/],
    [`quay.io/${'a'.repeat(250)}`, /longer than 255/],
  ])('rejects %j', (text, reason) => {
    let error: unknown
    try {
      parseReference(text, 'dataset')
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(InputError)
    const message = (error as Error).message
    expect(message).toMatch(/^input 'dataset': /)
    expect(message).toMatch(reason)
    if (text !== '')
      expect(message).toContain(
        'is not a valid OCI reference (expected [registry/]repository[:tag][@sha256:<64 hex>])',
      )
  })

  it('names "image" when no input name is given', () => {
    expect(() => parseReference('Bad Ref')).toThrow(/^input 'image': /)
  })
})

describe('reference helpers', () => {
  it('formats canonically and round-trips', () => {
    for (const text of [
      'docker.io/library/alpine:3',
      'registry.local:5000/iris/model:v1',
      `quay.io/a/b@${digest}`,
      `quay.io/a/b:t@${digest}`,
      'ghcr.io/o/r',
    ]) {
      expect(formatReference(parseReference(text))).toBe(text)
    }
    expect(formatReference(parseReference('alpine'))).toBe('docker.io/library/alpine')
  })

  it('pins to a digest, dropping the tag', () => {
    const ref = parseReference('registry.local:5000/iris/model:v1')
    expect(formatReference(withDigest(ref, digest))).toBe(
      `registry.local:5000/iris/model@${digest}`,
    )
    expect(() => withDigest(ref, 'sha256:short')).toThrow(/not a sha256 digest/)
    expect(repositoryOf(ref)).toBe('registry.local:5000/iris/model')
    expect(formatReference(withTag(ref, 'sha256-abc.sig'))).toBe(
      'registry.local:5000/iris/model:sha256-abc.sig',
    )
  })

  it('targets digest, then tag, then latest', () => {
    expect(manifestTarget(parseReference(`a/b:t@${digest}`))).toBe(digest)
    expect(manifestTarget(parseReference('a/b:t'))).toBe('t')
    expect(manifestTarget(parseReference('a/b'))).toBe('latest')
  })

  it('maps Docker Hub to its API host only', () => {
    expect(registryApiHost('docker.io')).toBe('registry-1.docker.io')
    expect(registryApiHost('quay.io')).toBe('quay.io')
    expect(registryApiHost('registry.local:5000')).toBe('registry.local:5000')
  })
})
