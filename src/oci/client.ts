import { UserError } from '../errors.js'
import { RegistryAuth, type CredentialStore } from './auth.js'
import { DigestMismatchError, isDigest, sha256Digest, verifyContent } from './digest.js'
import {
  RegistryError,
  defaultRetryPolicy,
  errorFromResponse,
  fetchWithRetry,
  readBody,
  type RequestContext,
  type RetryPolicy,
} from './http.js'
import { parseManifest } from './manifest.js'
import {
  formatReference,
  manifestTarget,
  registryApiHost,
  withDigest,
  withTag,
  type Reference,
  type Repository,
} from './reference.js'
import { allManifestTypes, imageManifestTypes, type Digest, type Manifest } from './types.js'

export interface RegistryClientOptions {
  credentials?: CredentialStore
  /** Registries spoken to over plain HTTP (`127.0.0.1:5000`, `registry.local:5000`); https otherwise. */
  insecure?: (registry: string) => boolean
  retry?: Partial<RetryPolicy>
  /** Per request, body included. */
  timeoutMs?: number
}

/** What a reference points at, without the content. */
export interface ResolvedManifest {
  digest: Digest
  mediaType: string
  size: number
}

/** A manifest fetched and checked: its bytes hash to `digest`. */
export interface FetchedManifest extends ResolvedManifest {
  /** The same repository pinned to `digest`. */
  reference: Reference & { digest: Digest }
  manifest: Manifest
  bytes: Uint8Array
}

/** The `.sig` and `.att` manifests cosign/Chains attach to an image digest; absent ones undefined. */
export interface CosignAttachments {
  signatures?: FetchedManifest
  attestations?: FetchedManifest
}

/** Manifests larger than this are refused (the distribution spec lets registries cap at 4 MiB). */
const manifestLimit = 4 * 1024 * 1024

/** `sha256-<hex>.sig` / `.att`: where cosign and Chains store attachments of a digest. */
export function cosignAttachmentTag(imageDigest: string, kind: 'sig' | 'att'): string {
  if (!isDigest(imageDigest)) throw new TypeError(`not a sha256 digest: ${imageDigest}`)
  return `${imageDigest.replace(':', '-')}.${kind}`
}

interface Send {
  registry: string
  method: 'GET' | 'HEAD' | 'PUT' | 'POST'
  /** A path under the registry's base URL, or an absolute URL (upload locations). */
  target: string
  /** Token scope: `repository:<name>:pull` or `...:pull,push`; '' for `/v2/`. */
  scope: string
  headers?: Record<string, string>
  body?: Uint8Array
}

/**
 * A client for the OCI distribution API: resolve, pull and push manifests and
 * blobs, find cosign attachments. Everything fetched is checked against its digest.
 */
export class RegistryClient {
  private readonly auth: RegistryAuth
  private readonly retry: RetryPolicy
  private readonly timeoutMs: number
  private readonly insecure: (registry: string) => boolean

  constructor(options: RegistryClientOptions = {}) {
    this.retry = { ...defaultRetryPolicy, ...options.retry }
    this.timeoutMs = options.timeoutMs ?? 120_000
    this.insecure = options.insecure ?? (() => false)
    this.auth = new RegistryAuth({
      credentials: options.credentials,
      retry: this.retry,
      timeoutMs: this.timeoutMs,
    })
  }

  /** `http(s)://<api host>`: the registry's API base URL. */
  baseUrl(registry: string): string {
    return `${this.insecure(registry) ? 'http' : 'https'}://${registryApiHost(registry)}`
  }

  /** `GET /v2/`: the registry answers and accepts our credentials (or needs none). */
  async ping(registry: string): Promise<void> {
    const context = { registry, method: 'GET', path: '/v2/' }
    const response = await this.send({ registry, method: 'GET', target: '/v2/', scope: '' })
    if (!response.ok) throw await errorFromResponse(response, context)
    await response.body?.cancel()
  }

  /**
   * Digest, media type and size of what a reference points at. Always a GET,
   * never a HEAD: the digest is computed from the bytes, not taken on the
   * registry's word, so a pinned dataset is the content it names.
   */
  async resolve(ref: Reference): Promise<ResolvedManifest> {
    const { digest, mediaType, size } = await this.getManifest(ref)
    return { digest, mediaType, size }
  }

  /**
   * Fetches a manifest or index and checks it: the bytes must hash to the
   * requested digest (by-digest) or to the registry's Docker-Content-Digest
   * (by-tag), parse as a schema 2 manifest, and be one of the `accept` types.
   */
  async getManifest(
    ref: Reference,
    accept: readonly string[] = allManifestTypes,
  ): Promise<FetchedManifest> {
    const path = manifestPath(ref)
    const context: RequestContext = { registry: ref.registry, method: 'GET', path }
    const response = await this.send({
      registry: ref.registry,
      method: 'GET',
      target: path,
      scope: pullScope(ref),
      headers: { Accept: accept.join(', ') },
    })
    if (!response.ok)
      throw await errorFromResponse(response, context, `manifest ${formatReference(ref)}`)
    const bytes = await readBody(response, manifestLimit, context)
    const what = `registry ${ref.registry}: GET ${path}`
    const digest = ref.digest ? verifyContent(bytes, ref.digest, what) : sha256Digest(bytes)
    const announced = response.headers.get('docker-content-digest')
    if (isDigest(announced) && announced !== digest)
      throw new DigestMismatchError(what, announced, digest)
    const { manifest, mediaType } = parseManifest(bytes, response.headers.get('content-type'), what)
    if (!accept.includes(mediaType)) {
      throw new UserError(
        `${what}: registry returned a ${mediaType}, which is not one of the accepted types (${accept.join(', ')})`,
      )
    }
    return {
      digest,
      mediaType,
      size: bytes.byteLength,
      reference: withDigest(ref, digest),
      manifest,
      bytes,
    }
  }

  /** Fetches a blob and checks it against its digest (and size, when given). */
  async getBlob(repo: Repository, digest: string, expectedSize?: number): Promise<Uint8Array> {
    if (!isDigest(digest)) throw new TypeError(`not a sha256 digest: ${digest}`)
    const path = `/v2/${repo.repository}/blobs/${digest}`
    const context: RequestContext = { registry: repo.registry, method: 'GET', path }
    const response = await this.send({
      registry: repo.registry,
      method: 'GET',
      target: path,
      scope: pullScope(repo),
    })
    if (!response.ok) throw await errorFromResponse(response, context, `blob ${digest}`)
    const limit = expectedSize ?? Number.MAX_SAFE_INTEGER
    const bytes = await readBody(response, limit, context)
    verifyContent(bytes, digest, `registry ${repo.registry}: GET ${path}`, expectedSize)
    return bytes
  }

  /** Whether the repository has a blob (HEAD: 200 yes, 404 no, anything else an error). */
  async hasBlob(repo: Repository, digest: string): Promise<boolean> {
    if (!isDigest(digest)) throw new TypeError(`not a sha256 digest: ${digest}`)
    const path = `/v2/${repo.repository}/blobs/${digest}`
    const response = await this.send({
      registry: repo.registry,
      method: 'HEAD',
      target: path,
      scope: pullScope(repo),
    })
    await response.body?.cancel()
    if (response.ok) return true
    if (response.status === 404) return false
    throw await errorFromResponse(response, { registry: repo.registry, method: 'HEAD', path })
  }

  /**
   * Uploads a blob in one piece (POST for an upload location, then PUT with the
   * digest), skipping the upload when the registry already has it.
   */
  async pushBlob(repo: Repository, bytes: Uint8Array): Promise<{ digest: Digest; size: number }> {
    const digest = sha256Digest(bytes)
    const result = { digest, size: bytes.byteLength }
    if (await this.hasBlob(repo, digest)) return result

    const startPath = `/v2/${repo.repository}/blobs/uploads/`
    const started = await this.send({
      registry: repo.registry,
      method: 'POST',
      target: startPath,
      scope: pushScope(repo),
    })
    const startContext = { registry: repo.registry, method: 'POST', path: startPath }
    if (started.status !== 202)
      throw await errorFromResponse(started, startContext, 'starting a blob upload')
    await started.body?.cancel()
    const location = started.headers.get('location')
    if (!location)
      throw new RegistryError(
        startContext,
        202,
        undefined,
        'upload started without a Location header',
      )

    const url = new URL(location, this.baseUrl(repo.registry))
    url.searchParams.set('digest', digest)
    const finished = await this.send({
      registry: repo.registry,
      method: 'PUT',
      target: url.toString(),
      scope: pushScope(repo),
      headers: { 'Content-Type': 'application/octet-stream' },
      body: bytes,
    })
    const putContext = { registry: repo.registry, method: 'PUT', path: url.pathname }
    if (finished.status !== 201)
      throw await errorFromResponse(finished, putContext, `uploading blob ${digest}`)
    await finished.body?.cancel()
    const stored = finished.headers.get('docker-content-digest')
    if (isDigest(stored) && stored !== digest) {
      throw new DigestMismatchError(
        `registry ${repo.registry}: PUT ${url.pathname}`,
        digest,
        stored,
      )
    }
    return result
  }

  /**
   * Uploads manifest bytes under a tag (or under their digest when `ref` has
   * one, which must then be theirs). Returns what the reference now resolves to.
   */
  async pushManifest(
    ref: Reference,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<ResolvedManifest> {
    const digest = sha256Digest(bytes)
    if (ref.digest && ref.digest !== digest) {
      throw new DigestMismatchError(`pushing ${formatReference(ref)}`, ref.digest, digest)
    }
    const path = manifestPath(ref)
    const response = await this.send({
      registry: ref.registry,
      method: 'PUT',
      target: path,
      scope: pushScope(ref),
      headers: { 'Content-Type': mediaType },
      body: bytes,
    })
    const context = { registry: ref.registry, method: 'PUT', path }
    if (response.status !== 201)
      throw await errorFromResponse(response, context, `manifest ${formatReference(ref)}`)
    await response.body?.cancel()
    const stored = response.headers.get('docker-content-digest')
    if (isDigest(stored) && stored !== digest) {
      throw new DigestMismatchError(`registry ${ref.registry}: PUT ${path}`, digest, stored)
    }
    return { digest, mediaType, size: bytes.byteLength }
  }

  /**
   * The cosign `.sig` and `.att` manifests of an image digest, from the tags
   * `sha256-<hex>.sig` / `.att` in the image's repository. A tag the registry does
   * not know (404) is absent; any other failure is an error.
   */
  async findCosignAttachments(repo: Repository, imageDigest: string): Promise<CosignAttachments> {
    const [signatures, attestations] = await Promise.all(
      (['sig', 'att'] as const).map((kind) =>
        this.getManifest(
          withTag(repo, cosignAttachmentTag(imageDigest, kind)),
          imageManifestTypes,
        ).catch((err: unknown) => {
          if (err instanceof RegistryError && err.status === 404) return undefined
          throw err
        }),
      ),
    )
    return { ...(signatures && { signatures }), ...(attestations && { attestations }) }
  }

  /**
   * One request with authorization: the known header up front; on 401, answer
   * the challenge once and retry; a second 401 means the credentials are refused.
   */
  private async send(request: Send): Promise<Response> {
    const base = this.baseUrl(request.registry)
    const url = new URL(request.target, base)
    // Credentials go only to the registry's own origin, never to where a Location points.
    const ours = url.origin === new URL(base).origin
    const context: RequestContext = {
      registry: request.registry,
      method: request.method,
      path: url.pathname,
    }
    const headers = { 'User-Agent': 'oml-chains-action', ...request.headers }
    let authorization = ours ? this.auth.authorization(request.registry, request.scope) : undefined

    for (let answered = false; ; answered = true) {
      const response = await fetchWithRetry(
        url.toString(),
        {
          method: request.method,
          headers: authorization ? { ...headers, Authorization: authorization } : headers,
          body: request.body ?? null,
        },
        this.retry,
        context,
        this.timeoutMs,
      )
      if (response.status !== 401 || !ours) return response
      await response.body?.cancel()
      if (answered || authorization?.startsWith('Basic ')) {
        this.auth.forget(request.registry, request.scope)
        throw this.auth.rejected(request.registry, request.scope, url.pathname)
      }
      // A cached token may have been revoked or lack this scope: get a fresh one.
      this.auth.forget(request.registry, request.scope)
      authorization = await this.auth.respond(
        request.registry,
        request.scope,
        response.headers.get('www-authenticate'),
        url.protocol === 'https:',
      )
    }
  }
}

function manifestPath(ref: Reference): string {
  return `/v2/${ref.repository}/manifests/${manifestTarget(ref)}`
}

function pullScope(repo: Repository): string {
  return `repository:${repo.repository}:pull`
}

function pushScope(repo: Repository): string {
  return `repository:${repo.repository}:pull,push`
}
