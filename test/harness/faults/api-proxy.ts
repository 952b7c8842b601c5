/**
 * A bad network in front of a real API server: an HTTPS proxy on 127.0.0.1
 * (its own certificate, from a throwaway CA) that passes each request through
 * to the server, except that it answers bursts of them with 429 Too Many
 * Requests or 503 Service Unavailable (Status bodies, as the API server
 * writes them), and cuts every watch short after its first event. A process
 * given `kubeconfig` talks to the real server through it. This is a fault
 * injector, not a stand-in: every answer that is not a fault is the server's.
 */
import { request as httpsRequest } from 'node:https'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { makeTestCA } from '../certs.js'
import type { TestKube } from '../kube.js'

export interface ApiFaults {
  /** Requests (watches aside) answered with a fault: 1-based positions, e.g. [2, 3, 10]. Odd bursts 429, even 503. */
  failing: (n: number) => false | 429 | 503
  /** Cut each watch this long after its first event (the server's events up to then pass). */
  cutWatchesAfterMs?: number
}

export interface ApiProxy {
  /** A kubeconfig file for the server, through the proxy, with the admin's token. */
  kubeconfigPath: string
  stats: { requests: number; throttled: number; unavailable: number; watchesCut: number }
  stop(): Promise<void>
}

/** Bursts: `length` requests failing after every `every` that pass, 429 and 503 by turns. */
export function bursts(every: number, length: number): ApiFaults['failing'] {
  return (n) => {
    const cycle = Math.floor((n - 1) / (every + length))
    const inCycle = (n - 1) % (every + length)
    if (inCycle < every) return false
    return cycle % 2 === 0 ? 429 : 503
  }
}

export async function startApiProxy(kube: TestKube, faults: ApiFaults): Promise<ApiProxy> {
  const ca = await makeTestCA()
  const cert = await ca.issue(['127.0.0.1'])
  const upstream = new URL(kube.server)
  const stats = { requests: 0, throttled: 0, unavailable: 0, watchesCut: 0 }

  const server: Server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    const watching = /[?&]watch=(true|1)/.test(req.url ?? '')
    if (!watching) {
      const fault = faults.failing(++stats.requests)
      if (fault) {
        if (fault === 429) stats.throttled++
        else stats.unavailable++
        req.resume()
        const reason = fault === 429 ? 'TooManyRequests' : 'ServiceUnavailable'
        res.writeHead(fault, {
          'Content-Type': 'application/json',
          ...(fault === 429 ? { 'Retry-After': '1' } : {}),
        })
        res.end(
          JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message:
              fault === 429
                ? 'too many requests, please try again later'
                : 'the server is currently unable to handle the request',
            reason,
            code: fault,
          }),
        )
        return
      }
    }
    const forwarded = httpsRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
        ca: kube.ca,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
        if (watching && faults.cutWatchesAfterMs !== undefined) {
          answer.once('data', () => {
            setTimeout(() => {
              stats.watchesCut++
              answer.destroy()
              res.destroy()
            }, faults.cutWatchesAfterMs)
          })
        }
      },
    )
    forwarded.on('error', () => res.destroy())
    req.pipe(forwarded)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  const dir = await mkdtemp(path.join(tmpdir(), 'oml-api-proxy-'))
  const kubeconfigPath = path.join(dir, 'kubeconfig')
  await writeFile(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'through-proxy',
          cluster: {
            server: `https://127.0.0.1:${port}`,
            'certificate-authority-data': Buffer.from(ca.caPem).toString('base64'),
          },
        },
      ],
      users: [{ name: 'admin', user: { token: kube.token } }],
      contexts: [{ name: 'through-proxy', context: { cluster: 'through-proxy', user: 'admin' } }],
      'current-context': 'through-proxy',
    }),
  )
  return {
    kubeconfigPath,
    stats,
    async stop() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await Promise.all([rm(dir, { recursive: true, force: true }), ca.dispose()])
    },
  }
}
