/**
 * A stand-in for the GitHub release download host, for tests: a real HTTP
 * server on 127.0.0.1 that answers release asset paths the way github.com
 * does (a 302 to a blob URL that serves the bytes), or with whatever failure a
 * test asks for. It plays the network, not a tool. With `tls`, it speaks HTTPS
 * under the name the certificate is for (`https://github.com`), reached
 * through the forward proxy of internet.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { ServingCert } from './certs.js'

export type Responder = (req: IncomingMessage, res: ServerResponse) => void

export interface ReleaseHost {
  /**
   * The base URL that replaces `https://github.com`: `http://127.0.0.1:<port>`,
   * or with `tls` the origin it plays (`https://github.com`).
   */
  url: string
  /** The port it listens on, on 127.0.0.1. */
  port: number
  /** Serve `body` at `path` (through a redirect, as GitHub does). */
  asset(path: string, body: Uint8Array | string): void
  /** Answer `path` with `respond` (a failure, say). */
  route(path: string, respond: Responder): void
  /** Answer the next `times` requests for `path` with `respond`, then as before. */
  failFirst(path: string, times: number, respond: Responder): void
  /** How many requests came for `path` (the redirect targets are counted apart). */
  requests(path: string): number
  close(): Promise<void>
}

export async function startReleaseHost(
  options: {
    /** Serve HTTPS with this certificate, as `origin`. */
    tls?: ServingCert & { origin: string }
  } = {},
): Promise<ReleaseHost> {
  const routes = new Map<string, Responder>()
  const counts = new Map<string, number>()
  let blobs = 0

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://stand-in').pathname
    counts.set(path, (counts.get(path) ?? 0) + 1)
    const respond = routes.get(path)
    if (respond) respond(req, res)
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found')
  }
  const { tls } = options
  const server = tls
    ? createHttpsServer({ cert: tls.cert, key: tls.key }, handle)
    : createServer(handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  const url = tls ? tls.origin : `http://127.0.0.1:${port}`

  return {
    url,
    port,
    asset(path, body) {
      const blob = `/blobs/${++blobs}`
      routes.set(blob, (_req, res) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': Buffer.byteLength(body),
        })
        res.end(body)
      })
      // Absolute, as GitHub sends it (tool-cache's client does not resolve a relative one).
      routes.set(path, (_req, res) => res.writeHead(302, { location: url + blob }).end())
    },
    route(path, respond) {
      routes.set(path, respond)
    },
    failFirst(path, times, respond) {
      const after = routes.get(path)
      let left = times
      routes.set(path, (req, res) => {
        if (left-- > 0 || !after) respond(req, res)
        else after(req, res)
      })
    },
    requests: (path) => counts.get(path) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A responder that sends `status` with a page body, as an error page would. */
export function status(code: number): Responder {
  return (_req, res) => {
    res.writeHead(code, { 'content-type': 'text/html' })
    res.end(`<!DOCTYPE html><html><body>error ${code}</body></html>`)
  }
}

/** A responder that resets the connection (TCP RST) before any response. */
export const reset: Responder = (req) => {
  req.socket.resetAndDestroy()
}
