import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRegistry, type TestRegistry } from '../../test/harness/registry.js'
import { startReleaseHost } from '../../test/harness/release-host.js'
import {
  startAuthFront,
  type AuthFront,
  type AuthFrontOptions,
} from '../../test/harness/token-server.js'
import { AuthError, CredentialStore } from './auth.js'
import { RegistryClient, cosignAttachmentTag, type RegistryClientOptions } from './client.js'
import { DigestMismatchError, sha256Digest } from './digest.js'
import { RegistryError } from './http.js'
import { parseReference, withDigest, withTag, type Repository } from './reference.js'
import {
  Annotation,
  MediaType,
  isIndex,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
} from './types.js'

const enc = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))
const text = (value: string): Uint8Array => new TextEncoder().encode(value)

let registry: TestRegistry
const fronts: AuthFront[] = []

beforeAll(async () => {
  registry = await startRegistry()
})
afterAll(async () => {
  await Promise.all(fronts.map((f) => f.stop()))
  await registry?.stop()
})

/** A client speaking plain HTTP to the given hosts, with quick retries. */
function clientFor(hosts: string[], options: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({
    insecure: (r) => hosts.includes(r),
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    ...options,
  })
}

async function front(options: Omit<AuthFrontOptions, 'upstream'>): Promise<AuthFront> {
  const f = await startAuthFront({ upstream: registry.host, ...options })
  fronts.push(f)
  return f
}

function repo(host: string, name: string): Repository {
  return { registry: host, repository: name }
}

/** Pushes blobs and a manifest whose layers carry title annotations; returns what was pushed. */
async function pushArtifact(
  client: RegistryClient,
  where: Repository,
  tag: string,
  files: Record<string, string> = { 'iris.joblib': 'data-1', 'labels.joblib': 'data-2' },
): Promise<{ bytes: Uint8Array; manifest: ImageManifest; blobs: Map<string, Uint8Array> }> {
  const blobs = new Map<string, Uint8Array>()
  const config = enc({})
  const configDesc = {
    mediaType: MediaType.unknownConfig,
    ...(await client.pushBlob(where, config)),
  }
  blobs.set(configDesc.digest, config)
  const layers: Descriptor[] = []
  for (const [title, content] of Object.entries(files)) {
    const bytes = text(content)
    const pushed = await client.pushBlob(where, bytes)
    blobs.set(pushed.digest, bytes)
    layers.push({
      mediaType: MediaType.ociLayerTar,
      ...pushed,
      annotations: { [Annotation.title]: title },
    })
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDesc,
    layers,
  }
  const bytes = enc(manifest)
  await client.pushManifest(withTag(where, tag), bytes, MediaType.ociManifest)
  return { bytes, manifest, blobs }
}

describe('RegistryClient against the real registry', () => {
  let client: RegistryClient
  let dataset: Repository
  let pushed: Awaited<ReturnType<typeof pushArtifact>>

  beforeAll(async () => {
    client = clientFor([registry.host])
    dataset = repo(registry.host, 'mmortari/ml-iris')
    pushed = await pushArtifact(client, dataset, 'data')
  })

  it('answers a ping from a registry, and refuses a server that is not one', async () => {
    await expect(client.ping(registry.host)).resolves.toBeUndefined()
    // An HTTP server without the registry API: 404 on /v2/.
    const other = await startReleaseHost()
    try {
      const host = new URL(other.url).host
      await expect(clientFor([host]).ping(host)).rejects.toThrow(
        `registry ${host}: GET /v2/: HTTP 404`,
      )
    } finally {
      await other.close()
    }
  })

  it('speaks https unless a registry is named insecure', () => {
    expect(new RegistryClient().baseUrl('docker.io')).toBe('https://registry-1.docker.io')
    expect(new RegistryClient().baseUrl(registry.host)).toBe(`https://${registry.host}`)
    expect(client.baseUrl(registry.host)).toBe(`http://${registry.host}`)
  })

  it('resolves a tag to the sha256 of the bytes pushed, and a digest to itself', async () => {
    const ref = parseReference(`${registry.host}/mmortari/ml-iris:data`)
    const expected = {
      digest: sha256Digest(pushed.bytes),
      mediaType: MediaType.ociManifest,
      size: pushed.bytes.byteLength,
    }
    expect(await client.resolve(ref)).toEqual(expected)
    expect(await client.resolve(withDigest(ref, expected.digest))).toEqual(expected)
  })

  it('fetches the manifest with its exact bytes, and its blobs verified', async () => {
    const ref = parseReference(`${registry.host}/mmortari/ml-iris:data`)
    const got = await client.getManifest(ref)
    expect(got.bytes).toEqual(pushed.bytes)
    expect(got.digest).toBe(sha256Digest(pushed.bytes))
    expect(got.reference).toEqual(withDigest(ref, got.digest))
    expect(isIndex(got.manifest)).toBe(false)
    const manifest = got.manifest as ImageManifest
    expect(manifest.config.mediaType).toBe(MediaType.unknownConfig)
    expect(manifest.layers.map((l) => l.annotations?.[Annotation.title])).toEqual([
      'iris.joblib',
      'labels.joblib',
    ])
    for (const layer of manifest.layers) {
      expect(await client.getBlob(dataset, layer.digest, layer.size)).toEqual(
        pushed.blobs.get(layer.digest),
      )
    }
    const byDigest = await client.getManifest(got.reference, [MediaType.ociManifest])
    expect(byDigest.bytes).toEqual(pushed.bytes)
  })

  it('checks a blob against the size the descriptor gives', async () => {
    const layer = pushed.manifest.layers[0]!
    await expect(client.getBlob(dataset, layer.digest, layer.size + 1)).rejects.toThrow(
      /response exceeds|content is 6 bytes, expected 7/,
    )
  })

  it('skips uploading a blob the registry has, and reports absent ones', async () => {
    const fresh = text(`fresh-${Date.now()}`)
    expect(await client.hasBlob(dataset, sha256Digest(fresh))).toBe(false)
    const first = await client.pushBlob(dataset, fresh)
    expect(await client.hasBlob(dataset, first.digest)).toBe(true)
    expect(await client.pushBlob(dataset, fresh)).toEqual(first)
  })

  it('handles Docker-typed manifests, indexes and manifest lists, honouring the accepted types', async () => {
    const models = repo(registry.host, 'iris/model')
    const config = enc({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
    })
    const layer = text('not really gzip')
    const docker: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, ...(await client.pushBlob(models, config)) },
      layers: [
        { mediaType: MediaType.dockerLayerTarGzip, ...(await client.pushBlob(models, layer)) },
      ],
    }
    const dockerBytes = enc(docker)
    const dockerPushed = await client.pushManifest(
      withTag(models, 'docker'),
      dockerBytes,
      MediaType.dockerManifest,
    )
    const oci = await pushArtifact(client, models, 'oci', { 'model.joblib': 'weights' })
    const ociDigest = sha256Digest(oci.bytes)

    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        {
          mediaType: MediaType.dockerManifest,
          digest: dockerPushed.digest,
          size: dockerPushed.size,
          platform: { os: 'linux', architecture: 'amd64' },
        },
        {
          mediaType: MediaType.ociManifest,
          digest: ociDigest,
          size: oci.bytes.byteLength,
          platform: { os: 'linux', architecture: 'arm64' },
        },
      ],
    }
    const indexBytes = enc(index)
    await client.pushManifest(withTag(models, 'index'), indexBytes, MediaType.ociIndex)
    const list = { ...index, mediaType: MediaType.dockerManifestList }
    const listBytes = enc(list)
    await client.pushManifest(
      withDigest(models, sha256Digest(listBytes)),
      listBytes,
      MediaType.dockerManifestList,
    )

    const cases = [
      ['docker', MediaType.dockerManifest, dockerBytes],
      ['oci', MediaType.ociManifest, oci.bytes],
      ['index', MediaType.ociIndex, indexBytes],
      [sha256Digest(listBytes), MediaType.dockerManifestList, listBytes],
    ] as const
    for (const [target, mediaType, bytes] of cases) {
      const ref = target.startsWith('sha256:')
        ? withDigest(models, target)
        : withTag(models, target)
      expect(await client.resolve(ref)).toEqual({
        digest: sha256Digest(bytes),
        mediaType,
        size: bytes.byteLength,
      })
      const got = await client.getManifest(ref, [mediaType])
      expect(got.mediaType).toBe(mediaType)
      expect(got.bytes).toEqual(bytes)
      expect(isIndex(got.manifest)).toBe(
        mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList,
      )
      // This registry ignores Accept, so the client itself must refuse an unasked-for type.
      const other =
        mediaType === MediaType.ociManifest ? MediaType.dockerManifest : MediaType.ociManifest
      await expect(client.getManifest(ref, [other])).rejects.toThrow(
        `registry returned a ${mediaType}, which is not one of the accepted types (${other})`,
      )
    }
    const fetchedIndex = (await client.getManifest(withTag(models, 'index'))).manifest as ImageIndex
    expect(fetchedIndex.manifests.map((m) => m.digest)).toEqual([dockerPushed.digest, ociDigest])
  })

  it('refuses to push a manifest under a digest that is not its own', async () => {
    const bytes = enc({ schemaVersion: 2 })
    const wrong = sha256Digest(text('other'))
    await expect(
      client.pushManifest(withDigest(dataset, wrong), bytes, MediaType.ociManifest),
    ).rejects.toThrow(DigestMismatchError)
  })

  it('names registry, path, status and code for unknown repositories, tags and digests', async () => {
    const host = registry.host
    const missingDigest = sha256Digest(text('nothing'))
    const cases = [
      [
        parseReference(`${host}/no/such:v1`),
        `registry ${host}: GET /v2/no/such/manifests/v1: HTTP 404 NAME_UNKNOWN: manifest ${host}/no/such:v1: Unknown name`,
      ],
      [
        parseReference(`${host}/mmortari/ml-iris:nope`),
        `registry ${host}: GET /v2/mmortari/ml-iris/manifests/nope: HTTP 404 MANIFEST_UNKNOWN:`,
      ],
      [
        withDigest(dataset, missingDigest),
        `registry ${host}: GET /v2/mmortari/ml-iris/manifests/${missingDigest}: HTTP 404 MANIFEST_UNKNOWN:`,
      ],
    ] as const
    for (const [ref, message] of cases) {
      for (const attempt of [() => client.resolve(ref), () => client.getManifest(ref)]) {
        const error = await attempt().then(
          () => undefined,
          (err: unknown) => err,
        )
        expect(error).toBeInstanceOf(RegistryError)
        expect((error as RegistryError).status).toBe(404)
        expect((error as Error).message).toContain(message)
      }
    }
    await expect(client.getBlob(dataset, missingDigest)).rejects.toThrow(
      `registry ${host}: GET /v2/mmortari/ml-iris/blobs/${missingDigest}: HTTP 404 BLOB_UNKNOWN`,
    )
  })

  it('finds cosign .sig and .att attachments when present, and reports them absent otherwise', async () => {
    const models = repo(registry.host, 'iris/signed')
    const image = await pushArtifact(client, models, 'v1', { 'model.joblib': 'signed weights' })
    const imageDigest = sha256Digest(image.bytes)
    expect(cosignAttachmentTag(imageDigest, 'sig')).toBe(`sha256-${imageDigest.slice(7)}.sig`)
    expect(await client.findCosignAttachments(models, imageDigest)).toEqual({})

    const payload = enc({ critical: { image: { 'docker-manifest-digest': imageDigest } } })
    const sig: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, ...(await client.pushBlob(models, enc({}))) },
      layers: [
        {
          mediaType: MediaType.cosignSimpleSigning,
          ...(await client.pushBlob(models, payload)),
          annotations: { [Annotation.cosignSignature]: 'MEUCIQ==' },
        },
      ],
    }
    await client.pushManifest(
      withTag(models, cosignAttachmentTag(imageDigest, 'sig')),
      enc(sig),
      MediaType.ociManifest,
    )
    const onlySig = await client.findCosignAttachments(models, imageDigest)
    expect(onlySig.attestations).toBeUndefined()
    expect(onlySig.signatures?.manifest).toEqual(sig)
    expect(onlySig.signatures?.digest).toBe(sha256Digest(enc(sig)))

    const envelope = enc({
      payloadType: 'application/vnd.in-toto+json',
      payload: 'e30=',
      signatures: [],
    })
    const att: ImageManifest = {
      ...sig,
      layers: [
        {
          mediaType: MediaType.dsseEnvelope,
          ...(await client.pushBlob(models, envelope)),
          annotations: { predicateType: 'https://slsa.dev/provenance/v0.2' },
        },
      ],
    }
    await client.pushManifest(
      withTag(models, cosignAttachmentTag(imageDigest, 'att')),
      enc(att),
      MediaType.ociManifest,
    )
    const both = await client.findCosignAttachments(models, imageDigest)
    expect(both.signatures?.manifest).toEqual(sig)
    expect(both.attestations?.manifest).toEqual(att)
    const envelopeLayer = (both.attestations?.manifest as ImageManifest).layers[0]!
    expect(await client.getBlob(models, envelopeLayer.digest, envelopeLayer.size)).toEqual(envelope)

    // Another image in the same repository, and a repository that does not exist.
    const otherDigest = sha256Digest(text('other image'))
    expect(await client.findCosignAttachments(models, otherDigest)).toEqual({})
    expect(await client.findCosignAttachments(repo(registry.host, 'no/repo'), imageDigest)).toEqual(
      {},
    )
    expect(() => cosignAttachmentTag('sha256:xyz', 'att')).toThrow(/not a sha256 digest/)
  })
})

describe('RegistryClient through the stand-in auth front', () => {
  const alice = { username: 'alice', password: 's3cret-pw' }

  it('gets Bearer tokens with the right credentials, caching them per scope', async () => {
    const f = await front({ mode: 'bearer', users: { alice: alice.password } })
    const client = clientFor([f.host], { credentials: new CredentialStore().set(f.host, alice) })
    const where = repo(f.host, 'team/dataset')
    const pushed = await pushArtifact(client, where, 'v1')
    const ref = withTag(where, 'v1')
    const digest = sha256Digest(pushed.bytes)
    expect((await client.resolve(ref)).digest).toBe(digest)
    const tokensSoFar = f.stats.tokenRequests
    const challengesSoFar = f.stats.unauthorized
    expect((await client.getManifest(ref)).digest).toBe(digest)
    expect((await client.resolve(ref)).digest).toBe(digest)
    // Cached pull token: no new token request, no new 401.
    expect(f.stats.tokenRequests).toBe(tokensSoFar)
    expect(f.stats.unauthorized).toBe(challengesSoFar)
    const scopes = f.stats.tokenScopes.flat()
    expect(scopes).toContain('repository:team/dataset:pull')
    expect(scopes).toContain('repository:team/dataset:pull,push')
    await client.ping(f.host)
  })

  it('accepts tokens sent as access_token', async () => {
    const f = await front({
      mode: 'bearer',
      users: { alice: alice.password },
      tokenField: 'access_token',
    })
    const client = clientFor([f.host], { credentials: new CredentialStore().set(f.host, alice) })
    await pushArtifact(client, repo(f.host, 'oauth/style'), 'v1')
    expect((await client.getManifest(parseReference(`${f.host}/oauth/style:v1`))).mediaType).toBe(
      MediaType.ociManifest,
    )
  })

  it('says the credentials were rejected, or are missing', async () => {
    const f = await front({ mode: 'bearer', users: { alice: alice.password } })
    const ref = parseReference(`${f.host}/team/private:v1`)

    const wrong = clientFor([f.host], {
      credentials: new CredentialStore().set(f.host, { username: 'alice', password: 'nope' }),
    })
    const wrongError = await wrong.resolve(ref).catch((err: unknown) => err)
    expect(wrongError).toBeInstanceOf(AuthError)
    expect((wrongError as Error).message).toBe(
      `registry ${f.host}: the token service http://${f.host}/token rejected the credentials of user 'alice' (HTTP 401): check registry-username and registry-password, or the docker config's auths for it`,
    )
    expect((wrongError as Error).message).not.toContain('nope')

    const anonymous = clientFor([f.host])
    await expect(anonymous.resolve(ref)).rejects.toThrow(
      `registry ${f.host} requires credentials for repository:team/private:pull, and none are configured for it`,
    )
    // Attachment lookup must not turn an auth failure into "absent".
    await expect(anonymous.findCosignAttachments(ref, sha256Digest(text('x')))).rejects.toThrow(
      AuthError,
    )
  })

  it('pulls anonymously where tokens allow it, and refuses anonymous pushes', async () => {
    const f = await front({ mode: 'bearer', users: { alice: alice.password }, anonymousPull: true })
    const owner = clientFor([f.host], { credentials: new CredentialStore().set(f.host, alice) })
    const where = repo(f.host, 'public/iris')
    const pushed = await pushArtifact(owner, where, 'data')
    const anonymous = clientFor([f.host])
    expect((await anonymous.resolve(withTag(where, 'data'))).digest).toBe(
      sha256Digest(pushed.bytes),
    )
    await expect(anonymous.pushBlob(where, text('anonymous write'))).rejects.toThrow(
      `registry ${f.host} requires credentials for repository:public/iris:pull,push`,
    )
  })

  it('answers Basic challenges, then sends Basic up front; wrong passwords are named', async () => {
    const f = await front({ mode: 'basic', users: { alice: alice.password } })
    const client = clientFor([f.host], { credentials: new CredentialStore().set(f.host, alice) })
    const where = repo(f.host, 'basic/repo')
    const pushed = await pushArtifact(client, where, 'v1')
    expect((await client.resolve(withTag(where, 'v1'))).digest).toBe(sha256Digest(pushed.bytes))
    expect(f.stats.unauthorized).toBe(1)

    const wrong = clientFor([f.host], {
      credentials: new CredentialStore().set(f.host, { username: 'alice', password: 'bad' }),
    })
    await expect(wrong.resolve(withTag(where, 'v1'))).rejects.toThrow(
      `registry ${f.host} rejected the credentials of user 'alice' for /v2/basic/repo/manifests/v1 (HTTP 401)`,
    )
    await expect(clientFor([f.host]).resolve(withTag(where, 'v1'))).rejects.toThrow(
      `registry ${f.host} requires credentials for repository:basic/repo:pull`,
    )
  })

  it('takes credentials from a docker config file', async () => {
    const f = await front({ mode: 'bearer', users: { alice: alice.password } })
    const dir = await mkdtemp(path.join(tmpdir(), 'oci-client-'))
    try {
      const file = path.join(dir, 'config.json')
      const auth = Buffer.from(`${alice.username}:${alice.password}`).toString('base64')
      await writeFile(file, JSON.stringify({ auths: { [`http://${f.host}/v2/`]: { auth } } }))
      const client = clientFor([f.host], {
        credentials: await CredentialStore.fromDockerConfig(file),
      })
      await pushArtifact(client, repo(f.host, 'from/config'), 'v1')
      expect(f.stats.tokenRequests).toBeGreaterThan(0)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('RegistryClient when the registry misbehaves', () => {
  it('fails on blob bytes that do not match their digest', async () => {
    const plain = clientFor([registry.host])
    const where = repo(registry.host, 'tamper/blobs')
    const pushed = await pushArtifact(plain, where, 'v1')
    const f = await front({ mode: 'none', tamper: 'blobs' })
    const client = clientFor([f.host])
    const layer = pushed.manifest.layers[0]!
    const error = await client
      .getBlob(repo(f.host, 'tamper/blobs'), layer.digest, layer.size)
      .catch((err: unknown) => err)
    expect(error).toBeInstanceOf(DigestMismatchError)
    expect((error as Error).message).toContain(
      `registry ${f.host}: GET /v2/tamper/blobs/blobs/${layer.digest}: content has digest`,
    )
  })

  it('fails on manifest bytes that do not match the digest asked for or announced', async () => {
    const plain = clientFor([registry.host])
    const pushed = await pushArtifact(plain, repo(registry.host, 'tamper/manifests'), 'v1')
    const f = await front({ mode: 'none', tamper: 'manifests' })
    const client = clientFor([f.host])
    const digest = sha256Digest(pushed.bytes)
    await expect(
      client.getManifest(parseReference(`${f.host}/tamper/manifests@${digest}`)),
    ).rejects.toThrow(`content has digest`)
    // By tag there is no digest asked for: the registry's Docker-Content-Digest is the check.
    const byTag = await client
      .getManifest(parseReference(`${f.host}/tamper/manifests:v1`))
      .catch((err: unknown) => err)
    expect(byTag).toBeInstanceOf(DigestMismatchError)
    expect((byTag as DigestMismatchError).expected).toBe(digest)
    expect((byTag as Error).message).toMatch(
      new RegExp(
        `^registry ${f.host}: GET /v2/tamper/manifests/manifests/v1: content has digest sha256:[0-9a-f]{64}, expected ${digest}$`,
      ),
    )
  })

  it('retries 503s with backoff, saying so, and then succeeds', async () => {
    const plain = clientFor([registry.host])
    const pushed = await pushArtifact(plain, repo(registry.host, 'flaky/repo'), 'v1')
    const f = await front({ mode: 'none', failFirst: 2 })
    const logged: string[] = []
    const client = clientFor([f.host], {
      retry: { baseDelayMs: 5, maxDelayMs: 20, log: (line) => logged.push(line) },
    })
    expect((await client.resolve(parseReference(`${f.host}/flaky/repo:v1`))).digest).toBe(
      sha256Digest(pushed.bytes),
    )
    expect(f.stats.proxied).toBe(3)
    expect(logged).toEqual(
      [1, 2].map(
        (n) =>
          `registry ${f.host}: GET /v2/flaky/repo/manifests/v1: HTTP 503; retry ${n} of 3 in 0.0 s`,
      ),
    )
  })

  it('gives up after the configured attempts, naming registry, path and status', async () => {
    const f = await front({ mode: 'none', failFirst: 100 })
    const client = clientFor([f.host], { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } })
    await expect(client.resolve(parseReference(`${f.host}/flaky/repo:v1`))).rejects.toThrow(
      `registry ${f.host}: GET /v2/flaky/repo/manifests/v1: HTTP 503`,
    )
    // One GET, tried 3 times.
    expect(f.stats.proxied).toBe(3)
  })

  it('retries network errors and reports the last one', async () => {
    // A port that was just free: nothing listens there any more.
    const gone = await startAuthFront({ upstream: registry.host, mode: 'none' })
    await gone.stop()
    const client = clientFor([gone.host], { retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } })
    await expect(client.ping(gone.host)).rejects.toThrow(
      new RegExp(
        `^registry ${gone.host.replace(/\./g, '\\.')}: GET /v2/: .*ECONNREFUSED.*\\(after 2 attempts\\)$`,
      ),
    )
  })
})
