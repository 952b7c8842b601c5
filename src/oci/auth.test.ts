import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  CredentialStore,
  defaultDockerConfigPath,
  normalizeRegistryKey,
  parseDockerConfig,
  parseWwwAuthenticate,
} from './auth.js'

const b64 = (text: string): string => Buffer.from(text).toString('base64')

describe('docker config', () => {
  it('reads the auth field, username/password fields and Docker Hub URL keys', () => {
    const creds = parseDockerConfig(
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass:with:colons') },
          'quay.io': { username: 'robot+ci', password: 'q-secret' },
          'http://Registry.Local:5000/v2/': { auth: b64('local:pw') },
          'ghcr.io': {},
          'gcr.io': { auth: '', username: 'u', password: 'p' },
        },
        credsStore: 'desktop',
      }),
      'config.json',
    )
    expect(Object.fromEntries(creds)).toEqual({
      'docker.io': { username: 'hubuser', password: 'hub:pass:with:colons' },
      'quay.io': { username: 'robot+ci', password: 'q-secret' },
      'registry.local:5000': { username: 'local', password: 'pw' },
      'gcr.io': { username: 'u', password: 'p' },
    })
  })

  it('prefers a bare host key over a URL key for the same registry', () => {
    for (const auths of [
      {
        'docker.io': { auth: b64('bare:1') },
        'https://index.docker.io/v1/': { auth: b64('url:2') },
      },
      {
        'https://index.docker.io/v1/': { auth: b64('url:2') },
        'docker.io': { auth: b64('bare:1') },
      },
    ]) {
      const creds = parseDockerConfig(JSON.stringify({ auths }), 'c')
      expect(creds.get('docker.io')).toEqual({ username: 'bare', password: '1' })
    }
  })

  it('says which file and key is broken without showing the secret', () => {
    const secret = 'no-colon-here'
    expect(() =>
      parseDockerConfig(
        JSON.stringify({ auths: { 'quay.io': { auth: b64(secret) } } }),
        '/x/config.json',
      ),
    ).toThrow(/^\/x\/config.json: auths\["quay.io"\]: "auth" is not base64 of username:password$/)
    expect(() => parseDockerConfig('{"auths": ', '/x/config.json')).toThrow(
      /^\/x\/config.json: not valid JSON/,
    )
    expect(() => parseDockerConfig('[]', 'c')).toThrow(/expected a JSON object/)
    expect(() => parseDockerConfig('{"auths": []}', 'c')).toThrow(/"auths" must be an object/)
  })

  it('normalises registry keys', () => {
    expect(normalizeRegistryKey('https://index.docker.io/v1/')).toBe('docker.io')
    expect(normalizeRegistryKey('registry-1.docker.io')).toBe('docker.io')
    expect(normalizeRegistryKey('https://quay.io')).toBe('quay.io')
    expect(normalizeRegistryKey('127.0.0.1:5000')).toBe('127.0.0.1:5000')
  })

  it('finds the default path like docker does', () => {
    expect(defaultDockerConfigPath({ DOCKER_CONFIG: '/etc/dc' })).toBe('/etc/dc/config.json')
    expect(defaultDockerConfigPath({})).toBe(path.join(homedir(), '.docker', 'config.json'))
  })

  describe('files', () => {
    let dir: string
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'oci-auth-'))
    })
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true })
    })

    it('loads a file; explicit credentials override it; lookups fold Docker Hub names', async () => {
      const file = path.join(dir, 'config.json')
      await writeFile(
        file,
        JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('a:b') } } }),
      )
      const store = await CredentialStore.fromDockerConfig(file)
      expect(store.get('index.docker.io')).toEqual({ username: 'a', password: 'b' })
      expect(store.get('docker.io')).toEqual({ username: 'a', password: 'b' })
      store.set('docker.io', { username: 'explicit', password: 'c' })
      expect(store.get('registry-1.docker.io')).toEqual({ username: 'explicit', password: 'c' })
      expect(store.registries()).toEqual(['docker.io'])
    })

    it('treats a missing default file as empty, a missing named file as an error', async () => {
      const missing = path.join(dir, 'nope', 'config.json')
      expect((await CredentialStore.fromDockerConfig(missing)).registries()).toEqual([])
      await expect(CredentialStore.fromDockerConfig(missing, { required: true })).rejects.toThrow(
        /^docker config .*nope\/config.json: ENOENT/,
      )
    })
  })

  describe('masking', () => {
    afterEach(() => {
      vi.unstubAllEnvs()
      vi.restoreAllMocks()
    })

    it('registers the password and its Basic form with the runner', () => {
      vi.stubEnv('GITHUB_ACTIONS', 'true')
      const written: string[] = []
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk))
        return true
      })
      new CredentialStore().set('quay.io', { username: 'robot', password: 'p4ssw0rd!' })
      const out = written.join('')
      expect(out).toContain('::add-mask::p4ssw0rd!')
      expect(out).toContain(`::add-mask::${b64('robot:p4ssw0rd!')}`)
    })
  })
})

describe('parseWwwAuthenticate', () => {
  it('reads a Bearer challenge whose scope holds commas', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/alpine:pull,push',
        },
      },
    ])
  })

  it('reads Basic, unquoted and escaped values, and several challenges', () => {
    expect(parseWwwAuthenticate('Basic realm="Registry \\"R\\""')).toEqual([
      { scheme: 'basic', params: { realm: 'Registry "R"' } },
    ])
    expect(
      parseWwwAuthenticate(
        'Basic realm="x", BEARER Realm=http://h/token , service = s,error="insufficient_scope"',
      ),
    ).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      {
        scheme: 'bearer',
        params: { realm: 'http://h/token', service: 's', error: 'insufficient_scope' },
      },
    ])
    expect(parseWwwAuthenticate('')).toEqual([])
  })
})
