import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import path from 'node:path'
import { UserError } from '../errors.js'
import { maskSecret } from '../secrets.js'
import { dockerHub } from './reference.js'
import { fetchWithRetry, networkErrorText, readBody, type RetryPolicy } from './http.js'

export interface Credentials {
  username: string
  password: string
}

/** One entry of `auths` in a docker config.json, as docker, podman and skopeo write it. */
export interface DockerConfigAuth {
  /** base64 of `username:password`. */
  auth?: string
  username?: string
  password?: string
  /** OAuth2 refresh token (ACR, some `docker login` flows): not supported here. */
  identitytoken?: string
  registrytoken?: string
  email?: string
  serveraddress?: string
}

/** ~/.docker/config.json (the parts that hold credentials). */
export interface DockerConfig {
  auths?: Record<string, DockerConfigAuth>
  /** External credential helpers: not run by this action; `auths` entries are. */
  credsStore?: string
  credHelpers?: Record<string, string>
}

/** A credential or token request the registry refused, or missing credentials. */
export class AuthError extends UserError {
  override name = 'AuthError'
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, as docker looks it up. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG || path.join(homedir(), '.docker')
  return path.join(dir, 'config.json')
}

const dockerHubAliases = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io'])

/** Where refused credentials come from, for the error that says they were refused. */
const CHECK_CREDENTIALS =
  "check registry-username and registry-password, or the docker config's auths for it"

/**
 * The registry a credentials key or reference is about: scheme and path dropped
 * (`https://index.docker.io/v1/` -> `docker.io`), lowercased, Docker Hub's
 * names folded into `docker.io`.
 */
export function normalizeRegistryKey(key: string): string {
  const host = key
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .split('/')[0]!
    .toLowerCase()
  return dockerHubAliases.has(host) ? dockerHub : host
}

function decodeAuthField(auth: string, where: string): Credentials {
  const text = Buffer.from(auth, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  // The message says where, never what: the field is a secret.
  if (colon <= 0) throw new UserError(`${where}: "auth" is not base64 of username:password`)
  return { username: text.slice(0, colon), password: text.slice(colon + 1) }
}

/**
 * Credentials per registry from a docker config's `auths`. When several keys
 * name one registry (`docker.io` and `https://index.docker.io/v1/`), the key
 * written as a bare host wins, else the first.
 */
export function parseDockerConfig(text: string, source: string): Map<string, Credentials> {
  let config: unknown
  try {
    config = JSON.parse(text)
  } catch (err) {
    throw new UserError(`${source}: not valid JSON (${(err as Error).message})`)
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new UserError(`${source}: expected a JSON object with "auths"`)
  }
  const auths = (config as DockerConfig).auths ?? {}
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) {
    throw new UserError(`${source}: "auths" must be an object`)
  }
  const result = new Map<string, Credentials>()
  const exact = new Set<string>()
  for (const [key, entry] of Object.entries(auths)) {
    const where = `${source}: auths["${key}"]`
    if (typeof entry !== 'object' || entry === null) throw new UserError(`${where}: not an object`)
    let credentials: Credentials | undefined
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      credentials = decodeAuthField(entry.auth, where)
    } else if (typeof entry.username === 'string' && typeof entry.password === 'string') {
      credentials = { username: entry.username, password: entry.password }
    }
    // Entries without either are placeholders for a credential helper.
    if (!credentials) continue
    const registry = normalizeRegistryKey(key)
    const isExact = key.trim().toLowerCase() === registry
    if (result.has(registry) && (exact.has(registry) || !isExact)) continue
    result.set(registry, credentials)
    if (isExact) exact.add(registry)
  }
  return result
}

function maskCredentials(credentials: Credentials): void {
  maskSecret(credentials.password)
  // The Basic header and docker configs carry this form of the secret too.
  maskSecret(Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64'))
}

/** Credentials by registry; every password is masked as it is added. */
export class CredentialStore {
  private readonly byRegistry = new Map<string, Credentials>()

  /**
   * Reads a docker config. A missing file is an empty store unless `required`
   * (a path the user named must exist).
   */
  static async fromDockerConfig(
    file = defaultDockerConfigPath(),
    options: { required?: boolean } = {},
  ): Promise<CredentialStore> {
    const store = new CredentialStore()
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !options.required) return store
      throw new UserError(`docker config ${file}: ${(err as Error).message}`)
    }
    for (const [registry, credentials] of parseDockerConfig(text, file))
      store.set(registry, credentials)
    return store
  }

  /** Adds or overrides (explicit username/password inputs win over the docker config). */
  set(registry: string, credentials: Credentials): this {
    maskCredentials(credentials)
    this.byRegistry.set(normalizeRegistryKey(registry), credentials)
    return this
  }

  get(registry: string): Credentials | undefined {
    return this.byRegistry.get(normalizeRegistryKey(registry))
  }

  registries(): string[] {
    return [...this.byRegistry.keys()]
  }
}

/** One challenge of a `WWW-Authenticate` header: `Bearer realm="...",service="...",scope="..."`. */
export interface Challenge {
  /** Lowercased: `bearer`, `basic`. */
  scheme: string
  /** Parameter names lowercased; values unquoted. */
  params: Record<string, string>
}

const tokenChars = /[A-Za-z0-9!#$%&'*+.^_`|~-]/

/**
 * Parses `WWW-Authenticate` (RFC 9110 §11.6.1): several challenges, each with
 * comma-separated params whose quoted values may themselves hold commas
 * (`scope="repository:a:pull,push"`).
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = []
  let i = 0
  const skip = (chars: RegExp): void => {
    while (i < header.length && chars.test(header[i]!)) i++
  }
  const token = (): string => {
    const start = i
    while (i < header.length && tokenChars.test(header[i]!)) i++
    return header.slice(start, i)
  }
  const value = (): string => {
    if (header[i] !== '"') {
      // Leniently up to the next comma: some servers leave URLs unquoted.
      const start = i
      while (i < header.length && !/[\s,]/.test(header[i]!)) i++
      return header.slice(start, i)
    }
    let out = ''
    for (i++; i < header.length && header[i] !== '"'; i++) {
      if (header[i] === '\\' && i + 1 < header.length) i++
      out += header[i]
    }
    i++ // closing quote
    return out
  }

  while (i < header.length) {
    skip(/[\s,]/)
    const scheme = token()
    if (!scheme) break
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} }
    challenges.push(challenge)
    for (;;) {
      skip(/[\s,]/)
      const start = i
      const name = token()
      skip(/\s/)
      if (!name || header[i] !== '=') {
        // Not `name=`: the next challenge's scheme (or a token68 we do not use).
        i = start
        break
      }
      i++
      skip(/\s/)
      challenge.params[name.toLowerCase()] = value()
    }
    if (i === header.length) break
    // Guard against a stray character the grammar does not allow.
    if (!tokenChars.test(header[i]!) && !/[\s,]/.test(header[i]!)) i++
  }
  return challenges
}

/** Token endpoint answer (distribution token spec: `token`, or OAuth2's `access_token`). */
export interface TokenResponse {
  token?: string
  access_token?: string
  /** Seconds; the spec's default is 60. */
  expires_in?: number
  issued_at?: string
  refresh_token?: string
}

interface CachedToken {
  header: string
  expiresAt: number
}

export interface RegistryAuthOptions {
  credentials?: CredentialStore
  retry: RetryPolicy
  timeoutMs: number
}

/**
 * Authorization for registry requests: answers `Basic` and `Bearer` challenges
 * and remembers the result, so later requests send it up front. Tokens are
 * cached per registry and scope until shortly before they expire.
 */
export class RegistryAuth {
  private readonly tokens = new Map<string, CachedToken>()
  private readonly basicRegistries = new Set<string>()

  constructor(private readonly options: RegistryAuthOptions) {}

  credentialsFor(registry: string): Credentials | undefined {
    return this.options.credentials?.get(registry)
  }

  /** The Authorization header to send up front, if one is known for this registry and scope. */
  authorization(registry: string, scope: string): string | undefined {
    if (this.basicRegistries.has(registry)) return this.basicHeader(registry)
    const cached = this.tokens.get(`${registry} ${scope}`)
    if (cached && cached.expiresAt > Date.now()) return cached.header
    return undefined
  }

  /**
   * Answers a 401's challenge and returns the header to retry with.
   * `secureTransport` says whether the registry is spoken to over https: then
   * credentials are not sent to a plain-HTTP token realm.
   */
  async respond(
    registry: string,
    scope: string,
    wwwAuthenticate: string | null,
    secureTransport: boolean,
  ): Promise<string> {
    const challenges = parseWwwAuthenticate(wwwAuthenticate ?? '')
    const bearer = challenges.find((c) => c.scheme === 'bearer')
    if (bearer) return this.fetchToken(registry, scope, bearer, secureTransport)
    if (challenges.some((c) => c.scheme === 'basic')) {
      const header = this.basicHeader(registry)
      if (!header) throw this.missingCredentials(registry, scope)
      this.basicRegistries.add(registry)
      return header
    }
    throw new AuthError(
      `registry ${registry} asked for authentication without a usable challenge (WWW-Authenticate: ${JSON.stringify(wwwAuthenticate ?? '')})`,
    )
  }

  /** The error for a request that still got 401 after authenticating. */
  rejected(registry: string, scope: string, pathname: string): AuthError {
    const credentials = this.credentialsFor(registry)
    if (!credentials) return this.missingCredentials(registry, scope)
    return new AuthError(
      `registry ${registry} rejected the credentials of user '${credentials.username}' for ${pathname} (HTTP 401): ${CHECK_CREDENTIALS}`,
    )
  }

  /** Forget a cached token (the registry refused it). */
  forget(registry: string, scope: string): void {
    this.tokens.delete(`${registry} ${scope}`)
  }

  private missingCredentials(registry: string, scope: string): AuthError {
    return new AuthError(
      `registry ${registry} requires credentials${scope ? ` for ${scope}` : ''}, and none are configured for it (docker config auths, or the username/password inputs)`,
    )
  }

  private basicHeader(registry: string): string | undefined {
    const credentials = this.credentialsFor(registry)
    if (!credentials) return undefined
    return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
  }

  private async fetchToken(
    registry: string,
    scope: string,
    challenge: Challenge,
    secureTransport: boolean,
  ): Promise<string> {
    const realmText = challenge.params.realm
    let realm: URL
    try {
      realm = new URL(realmText ?? '')
      if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new Error('not http(s)')
    } catch {
      throw new AuthError(
        `registry ${registry}: Bearer challenge has no usable realm (${JSON.stringify(realmText)})`,
      )
    }
    const credentials = this.credentialsFor(registry)
    if (credentials && secureTransport && realm.protocol === 'http:') {
      throw new AuthError(
        `registry ${registry}: refusing to send credentials to the plain-HTTP token realm ${realm.origin}${realm.pathname}`,
      )
    }
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service)
    // Our own scope (what the request needs) plus any other the registry named.
    const scopes = new Set([scope, challenge.params.scope].filter((s): s is string => !!s))
    for (const s of scopes) realm.searchParams.append('scope', s)

    const where = `${realm.origin}${realm.pathname}`
    const context = { registry, method: 'GET', path: where }
    const headers: Record<string, string> = { Accept: 'application/json' }
    const basic = this.basicHeader(registry)
    if (basic) headers.Authorization = basic
    const response = await fetchWithRetry(
      realm.toString(),
      { method: 'GET', headers },
      this.options.retry,
      context,
      this.options.timeoutMs,
    )
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel()
      if (credentials) {
        throw new AuthError(
          `registry ${registry}: the token service ${where} rejected the credentials of user '${credentials.username}' (HTTP ${response.status}): ${CHECK_CREDENTIALS}`,
        )
      }
      throw this.missingCredentials(registry, scope)
    }
    if (!response.ok) {
      await response.body?.cancel()
      throw new AuthError(
        `registry ${registry}: token request to ${where} failed: HTTP ${response.status}`,
      )
    }
    let body: TokenResponse
    try {
      body = JSON.parse(
        new TextDecoder().decode(await readBody(response, 1024 * 1024, context)),
      ) as TokenResponse
    } catch (err) {
      throw new AuthError(
        `registry ${registry}: token service ${where} answered without a JSON token (${networkErrorText(err)})`,
      )
    }
    const token = body.token || body.access_token
    if (typeof token !== 'string' || token === '') {
      throw new AuthError(`registry ${registry}: token service ${where} answered without a token`)
    }
    maskSecret(token)
    const lifetime =
      typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60
    // Renew a little early, so a token does not expire between check and use.
    const expiresAt = Date.now() + Math.max(0, lifetime - 10) * 1000
    const header = `Bearer ${token}`
    this.tokens.set(`${registry} ${scope}`, { header, expiresAt })
    return header
  }
}
