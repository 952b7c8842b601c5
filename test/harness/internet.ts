/**
 * The internet as a process under test sees it: github.com, played by a
 * release-host stand-in, and nothing else. A forward proxy on 127.0.0.1
 * answers `CONNECT github.com:443` with a tunnel to the stand-in, which speaks
 * TLS with a certificate for github.com from a throwaway CA; every other host,
 * and every plain-HTTP request, gets a 403 and is recorded.
 *
 * A process started with `env` (HTTPS_PROXY and HTTP_PROXY at the proxy,
 * NODE_EXTRA_CA_CERTS at the CA) downloads "from https://github.com" exactly
 * what the test published there, the same on a machine with or without
 * internet. Loopback, where the test registry and API server listen, is not
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

const GITHUB = 'github.com'

export interface InternetStandIn {
  /** github.com, as `https://github.com`: publish release assets on it. */
  github: ReleaseHost
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
  const github = await startReleaseHost({
    tls: { ...(await ca.issue([GITHUB])), origin: `https://${GITHUB}` },
  })

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
    if (req.url !== `${GITHUB}:443`) {
      refused.push(req.url ?? '')
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n')
      return
    }
    const upstream = connect(github.port, '127.0.0.1', () => {
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
    github,
    env: {
      HTTPS_PROXY: proxyUrl,
      HTTP_PROXY: proxyUrl,
      NO_PROXY: '127.0.0.1,localhost',
      NODE_EXTRA_CA_CERTS: caFile,
    },
    refused: () => [...refused],
    async stop() {
      for (const socket of sockets) socket.destroy()
      await Promise.all([
        new Promise<void>((resolve) => proxy.close(() => resolve())),
        github.close(),
      ])
      await Promise.all([ca.dispose(), rm(dir, { recursive: true, force: true })])
    },
  }
}
