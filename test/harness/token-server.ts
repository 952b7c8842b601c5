import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * STAND-IN, not a real product: plays the authentication front a hosted
 * registry puts before its storage (Docker Hub's auth.docker.io token service,
 * distribution's `auth: token`, or a plain Basic-auth proxy), in front of the
 * real `registry` binary, which has no auth of its own. It also injects the
 * faults a real registry will not produce on demand: 503s and altered bytes.
 */
export interface AuthFrontOptions {
  /** `host:port` of the real registry behind it. */
  upstream: string
  /** `bearer`: token challenge + realm; `basic`: Basic challenge; `none`: plain proxy. */
  mode: 'bearer' | 'basic' | 'none'
  /** username -> password. */
  users?: Record<string, string>
  /** Tokens for anonymous callers grant `pull` (Docker Hub public repos); otherwise nothing. */
  anonymousPull?: boolean
  /** Which field of the token response carries the token. */
  tokenField?: 'token' | 'access_token'
  /** Answer the first N registry requests with 503. */
  failFirst?: number
  /** Flip one byte of GET blob / manifest bodies, keeping the registry's headers. */
  tamper?: 'blobs' | 'manifests'
}

export interface AuthFront {
  /** `127.0.0.1:PORT`: the registry as clients see it (plain HTTP). */
  host: string
  stats: {
    tokenRequests: number
    /** Scopes asked for, per token request. */
    tokenScopes: string[][]
    /** Registry requests answered 401. */
    unauthorized: number
    proxied: number
  }
  stop(): Promise<void>
}

interface Grant {
  /** `repository:action` pairs, e.g. `iris/model:push`. */
  access: Set<string>
}

const service = 'stand-in-registry'

/** What a registry path needs: repository name and action, or nothing for `/v2/`. */
function requiredAccess(
  method: string,
  pathname: string,
): { name: string; action: string } | undefined {
  const match = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\//.exec(pathname)
  if (!match) return undefined
  const action = method === 'GET' || method === 'HEAD' ? 'pull' : 'push'
  return { name: match[1]!, action }
}

function basicUser(
  header: string | undefined,
  users: Record<string, string>,
): string | undefined | null {
  if (!header?.startsWith('Basic ')) return undefined
  const text = Buffer.from(header.slice(6), 'base64').toString('utf8')
  const colon = text.indexOf(':')
  const user = text.slice(0, colon)
  // null: credentials were sent and are wrong.
  return colon > 0 && users[user] === text.slice(colon + 1) ? user : null
}

async function readRequestBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export async function startAuthFront(options: AuthFrontOptions): Promise<AuthFront> {
  const users = options.users ?? {}
  const tokens = new Map<string, Grant>()
  const stats: AuthFront['stats'] = {
    tokenRequests: 0,
    tokenScopes: [],
    unauthorized: 0,
    proxied: 0,
  }
  let failuresLeft = options.failFirst ?? 0
  let realm = ''

  const issueToken = (req: IncomingMessage, url: URL, res: ServerResponse): void => {
    stats.tokenRequests++
    const scopes = url.searchParams.getAll('scope')
    stats.tokenScopes.push(scopes)
    const user = basicUser(req.headers.authorization, users)
    if (user === null || url.searchParams.get('service') !== service) {
      res.writeHead(401, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ details: 'incorrect username or password' }))
      return
    }
    const access = new Set<string>()
    for (const scope of scopes) {
      const [type, name, actions] = scope.split(':')
      if (type !== 'repository' || !name || !actions) continue
      for (const action of actions.split(',')) {
        if (user || (options.anonymousPull && action === 'pull')) access.add(`${name}:${action}`)
      }
    }
    const token = randomBytes(16).toString('hex')
    tokens.set(token, { access })
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(
      JSON.stringify({
        [options.tokenField ?? 'token']: token,
        expires_in: 300,
        issued_at: new Date().toISOString(),
      }),
    )
  }

  /** Undefined when allowed; otherwise the challenge to answer 401 with. */
  const challenge = (req: IncomingMessage, url: URL): string | undefined => {
    const need = requiredAccess(req.method ?? 'GET', url.pathname)
    if (options.mode === 'basic') {
      return basicUser(req.headers.authorization, users)
        ? undefined
        : 'Basic realm="stand-in registry"'
    }
    const header = req.headers.authorization
    const grant = header?.startsWith('Bearer ') ? tokens.get(header.slice(7)) : undefined
    const actions = need?.action === 'push' ? 'pull,push' : 'pull'
    const scope = need ? `,scope="repository:${need.name}:${actions}"` : ''
    const bearer = `Bearer realm="${realm}",service="${service}"${scope}`
    if (!grant) return bearer
    if (need && !grant.access.has(`${need.name}:${need.action}`))
      return `${bearer},error="insufficient_scope"`
    return undefined
  }

  const proxy = async (req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> => {
    stats.proxied++
    if (failuresLeft > 0) {
      failuresLeft--
      res.writeHead(503, { 'Content-Type': 'text/plain' })
      res.end('stand-in: temporarily unavailable')
      return
    }
    const body = await readRequestBody(req)
    const headers = new Headers()
    for (const [name, value] of Object.entries(req.headers)) {
      if (['host', 'authorization', 'connection', 'content-length'].includes(name)) continue
      if (typeof value === 'string') headers.set(name, value)
    }
    const upstream = await fetch(`http://${options.upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers,
      body: body.length > 0 || req.method === 'PUT' || req.method === 'POST' ? body : null,
      redirect: 'manual',
    })
    const bytes = Buffer.from(await upstream.arrayBuffer())
    const isTarget =
      req.method === 'GET' &&
      upstream.status === 200 &&
      ((options.tamper === 'blobs' && url.pathname.includes('/blobs/')) ||
        (options.tamper === 'manifests' && url.pathname.includes('/manifests/')))
    if (isTarget && bytes.length > 0) bytes[bytes.length - 1]! ^= 0x01
    const out: Record<string, string> = {}
    upstream.headers.forEach((value, name) => {
      if (!['connection', 'transfer-encoding', 'keep-alive'].includes(name)) out[name] = value
    })
    res.writeHead(upstream.status, out)
    res.end(req.method === 'HEAD' ? undefined : bytes)
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stand-in')
    const handle = async (): Promise<void> => {
      if (url.pathname === '/token') return issueToken(req, url, res)
      if (options.mode !== 'none') {
        const wanted = challenge(req, url)
        if (wanted) {
          stats.unauthorized++
          await readRequestBody(req)
          res.writeHead(401, { 'WWW-Authenticate': wanted, 'Content-Type': 'application/json' })
          res.end(
            JSON.stringify({
              errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }],
            }),
          )
          return
        }
      }
      await proxy(req, url, res)
    }
    handle().catch((err: unknown) => {
      res.writeHead(502, { 'Content-Type': 'text/plain' })
      res.end(`stand-in proxy error: ${String(err)}`)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const host = `127.0.0.1:${port}`
  realm = `http://${host}/token`
  return {
    host,
    stats,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((err) => (err ? reject(err) : resolve()))
      }),
  }
}
