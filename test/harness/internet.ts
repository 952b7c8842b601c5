/**
 * The internet as a process under test sees it: github.com, api.github.com
 * and infra.tekton.dev (where Tekton publishes its release manifests), each
 * played by a release-host stand-in, and nothing else. A forward proxy on
 * 127.0.0.1 answers `CONNECT <host>:443` with a tunnel to that host's
 * stand-in, which speaks TLS with a certificate for it from a throwaway CA;
 * every other host, and every plain-HTTP request, gets a 403 and is recorded.
 *
 * A process started with `env` (HTTPS_PROXY and HTTP_PROXY at the proxy,
 * NODE_USE_ENV_PROXY so that Node's own fetch uses it too, NODE_EXTRA_CA_CERTS
 * at the CA) downloads "from https://github.com" exactly what the test
 * published there, the same on a machine with or without internet. Loopback, where the test registry and API server listen, is not
 * proxied (NO_PROXY; @actions/http-client never proxies loopback either).
 * This plays the network, not a tool: what a download fetches is real bytes
 * over real HTTPS through a real proxy tunnel, as on a runner behind a proxy.
 */
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { makeTestCA } from './certs.js'
import { startReleaseHost, type ReleaseHost } from './release-host.js'

/** The hosts played, by the name of their stand-in. */
const HOSTS = {
  github: 'github.com',
  githubApi: 'api.github.com',
  tektonReleases: 'infra.tekton.dev',
} as const
type HostName = keyof typeof HOSTS

export interface InternetStandIn {
  /** github.com, as `https://github.com`: publish release assets on it. */
  github: ReleaseHost
  /** api.github.com: GitHub's REST API (a release's assets and their digests). */
  githubApi: ReleaseHost
  /** infra.tekton.dev: Tekton's release manifests (releases/serve.ts). */
  tektonReleases: ReleaseHost
  /** Environment that sends a process's HTTP(S) through the proxy and trusts the stand-in's CA. */
  env: Record<string, string>
  /** What a process asked for that is not served (`host:port` or URL), oldest first. */
  refused(): string[]
  stop(): Promise<void>
}

export async function startInternetStandIn(): Promise<InternetStandIn> {
  const ca = await makeTestCA()
  const dir = await mkdtemp(path.join(tmpdir(), 'oml-internet-'))
  const caFile = path.join(dir, 'ca.pem')
  await writeFile(caFile, ca.caPem)
  const cert = await ca.issue(Object.values(HOSTS))
  const names = Object.keys(HOSTS) as HostName[]
  const started = await Promise.all(
    names.map((name) => startReleaseHost({ tls: { ...cert, origin: `https://${HOSTS[name]}` } })),
  )
  const hosts = Object.fromEntries(names.map((name, i) => [name, started[i]!])) as Record<
    HostName,
    ReleaseHost
  >
  // `host:443` -> the port of its stand-in.
  const tunnels = new Map(names.map((name) => [`${HOSTS[name]}:443`, hosts[name].port]))

  const refused: string[] = []
  const sockets = new Set<Socket>()
  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  }
  const proxy = createServer((req, res) => {
    // A plain-HTTP request through the proxy: nothing is served that way.
    refused.push(req.url ?? '')
    res.writeHead(403, { 'content-type': 'text/plain' }).end('refused by the test proxy\n')
  })
  proxy.on('connection', track)
  proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    track(client)
    const port = tunnels.get(req.url ?? '')
    if (port === undefined) {
      refused.push(req.url ?? '')
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n')
      return
    }
    const upstream = connect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    track(upstream)
    const close = () => {
      upstream.destroy()
      client.destroy()
    }
    upstream.on('error', close)
    client.on('error', close)
  })
  await new Promise<void>((resolve, reject) => {
    proxy.once('error', reject)
    proxy.listen(0, '127.0.0.1', resolve)
  })
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`

  return {
    ...hosts,
    env: {
      HTTPS_PROXY: proxyUrl,
      HTTP_PROXY: proxyUrl,
      NO_PROXY: '127.0.0.1,localhost',
      // tool-cache's client reads the variables above by itself; Node's fetch
      // (the action asks GitHub's API with it) only when told to (Node 24.5+).
      NODE_USE_ENV_PROXY: '1',
      NODE_EXTRA_CA_CERTS: caFile,
    },
    refused: () => [...refused],
    async stop() {
      for (const socket of sockets) socket.destroy()
      await Promise.all([
        new Promise<void>((resolve) => proxy.close(() => resolve())),
        ...started.map((host) => host.close()),
      ])
      await Promise.all([ca.dispose(), rm(dir, { recursive: true, force: true })])
    },
  }
}
