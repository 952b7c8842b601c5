/**
 * Stand-in for a node's kubelet, for the one thing the API server asks a
 * kubelet for in these tests: container logs. `GET .../pods/<pod>/log` on the
 * real API server is proxied to the kubelet of the Pod's node, found from the
 * Node object (address + `status.daemonEndpoints.kubeletEndpoint.Port`), as
 * virtual-kubelet does. This registers such a Node (InternalIP 127.0.0.1, kept
 * Ready with a Lease so the node lifecycle controller does not taint it and
 * evict the pods) and serves `/containerLogs/<ns>/<pod>/<container>` over
 * HTTPS from logs that other stand-ins (the Tekton one) write into it.
 *
 * Supported query parameters, as the kubelet reads them: `follow`,
 * `timestamps` (RFC 3339 with nanoseconds, strictly increasing per
 * container), `sinceTime`, `tailLines`. `disconnect()` drops the open follow
 * streams, which is what a kubelet restart or a network cut looks like to
 * the API server and so to its client. Until `start()` (or the first
 * output), a container's log answers 400 "waiting to start", as a kubelet's does.
 *
 * Without `--kubelet-certificate-authority`, kube-apiserver does not verify
 * the kubelet's serving certificate; with it (pass `ca.caPem` to a file) the
 * certificate issued here for 127.0.0.1 verifies.
 *
 * The real kubelet runs on the real node (test/node/); this stays where a log
 * stream must drop midway, and for the Tekton and Chains stand-ins' pods.
 */
import { PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { ServerResponse } from 'node:http'
import { apiMessage, connect, statusOf, type Kube } from '../../../src/kube/client.js'
import { makeTestCA, type TestCA } from '../certs.js'

export interface KubeletStandInOptions {
  /** Node name (default `stand-in-node`). */
  nodeName?: string
  /** A CA to issue the serving certificate from (default: a fresh one, see `ca`). */
  ca?: TestCA
  log?: (message: string) => void
}

export interface KubeletStandIn {
  nodeName: string
  /** The CA of the serving certificate (for `--kubelet-certificate-authority`). */
  caPem: string
  /** The container has started: until then its log answers 400, as a kubelet's does. */
  start(namespace: string, pod: string, container: string): void
  /** Appends output to a container's log; text without a final newline waits for the rest of its line. */
  write(namespace: string, pod: string, container: string, text: string): void
  /** The container has exited: flushes a partial line and ends its follow streams. */
  end(namespace: string, pod: string, container: string): void
  /** The full log of a container as recorded (lines without timestamps). */
  lines(namespace: string, pod: string, container: string): string[]
  /** How many log requests arrived for a container (a reconnect makes another). */
  requests(namespace: string, pod: string, container: string): number
  /** Drops every open follow stream; returns how many were dropped. */
  disconnect(): number
  stop(): Promise<void>
}

interface LogLine {
  /** RFC 3339 with 9 fractional digits, as the container runtime stamps lines. */
  time: string
  /** Nanoseconds since the epoch, for comparisons. */
  ns: bigint
  text: string
}

interface ContainerLog {
  started: boolean
  lines: LogLine[]
  partial: string
  ended: boolean
  requests: number
  followers: Set<ServerResponse>
}

const LEASE_SECONDS = 40

export async function startKubeletStandIn(
  kubeconfig: string,
  options: KubeletStandInOptions = {},
): Promise<KubeletStandIn> {
  const kube = connect(kubeconfig, 'kubelet stand-in kubeconfig')
  const nodeName = options.nodeName ?? 'stand-in-node'
  const log = options.log ?? ((message) => console.error(`kubelet stand-in: ${message}`))
  const ownCa = options.ca ? undefined : await makeTestCA()
  const ca = options.ca ?? ownCa!
  const serving = await ca.issue(['127.0.0.1'])
  const logs = new Map<string, ContainerLog>()
  let lastNs = 0n

  const entry = (namespace: string, pod: string, container: string): ContainerLog => {
    const key = `${namespace}/${pod}/${container}`
    let found = logs.get(key)
    if (!found) {
      found = {
        started: false,
        lines: [],
        partial: '',
        ended: false,
        requests: 0,
        followers: new Set(),
      }
      logs.set(key, found)
    }
    return found
  }

  const stamp = (): { time: string; ns: bigint } => {
    // Strictly increasing, so a reader can resume after the exact line it saw last.
    let ns = BigInt(Date.now()) * 1_000_000n
    if (ns <= lastNs) ns = lastNs + 1n
    lastNs = ns
    const seconds = new Date(Number(ns / 1_000_000_000n) * 1000).toISOString().slice(0, 19)
    const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0')
    return { time: `${seconds}.${fraction}Z`, ns }
  }

  const emit = (container: ContainerLog, text: string, timestamps: Set<ServerResponse>) => {
    const line = { ...stamp(), text }
    container.lines.push(line)
    for (const res of container.followers) {
      res.write(format(line, timestamps.has(res)))
    }
  }
  const withTimestamps = new Set<ServerResponse>()

  const server: Server = createServer({ cert: serving.cert, key: serving.key }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://kubelet')
    const match = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname)
    if (req.method !== 'GET' || !match) {
      res.writeHead(404).end('not found')
      return
    }
    const [, namespace, pod, name] = match.map(decodeURIComponent) as [
      string,
      string,
      string,
      string,
    ]
    const container = entry(namespace, pod, name)
    container.requests++
    if (!container.started) {
      // What a kubelet answers for a container that has not started yet.
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(`container "${name}" in pod "${pod}" is waiting to start: PodInitializing`)
      return
    }
    const query = url.searchParams
    const follow = query.get('follow') === 'true'
    const timestamps = query.get('timestamps') === 'true'
    const since = query.get('sinceTime')
    const sinceNs = since ? BigInt(Date.parse(since)) * 1_000_000n : undefined
    let lines = container.lines.filter((l) => sinceNs === undefined || l.ns >= sinceNs)
    const tail = query.get('tailLines')
    if (tail !== null) lines = lines.slice(-Number(tail))
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
    for (const line of lines) res.write(format(line, timestamps))
    if (!follow || container.ended) {
      res.end()
      return
    }
    container.followers.add(res)
    if (timestamps) withTimestamps.add(res)
    res.on('close', () => {
      container.followers.delete(res)
      withTimestamps.delete(res)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const port = (server.address() as AddressInfo).port

  const heartbeat = async () => {
    try {
      await registerNode(kube, nodeName, port)
      await renewLease(kube, nodeName)
    } catch (err) {
      log(`heartbeat: ${apiMessage(err)}`)
    }
  }
  try {
    await registerNode(kube, nodeName, port)
    await renewLease(kube, nodeName)
  } catch (err) {
    server.close()
    await ownCa?.dispose()
    throw err
  }
  // The node lifecycle controller expects a renewal well within the lease.
  const timer = setInterval(() => void heartbeat(), (LEASE_SECONDS / 4) * 1000)

  return {
    nodeName,
    caPem: ca.caPem,
    start(namespace, pod, name) {
      entry(namespace, pod, name).started = true
    },
    write(namespace, pod, name, text) {
      const container = entry(namespace, pod, name)
      container.started = true
      const parts = (container.partial + text).split('\n')
      container.partial = parts.pop() ?? ''
      for (const part of parts) emit(container, part, withTimestamps)
    },
    end(namespace, pod, name) {
      const container = entry(namespace, pod, name)
      container.started = true
      if (container.partial) emit(container, container.partial, withTimestamps)
      container.partial = ''
      container.ended = true
      for (const res of container.followers) res.end()
    },
    lines: (namespace, pod, name) => entry(namespace, pod, name).lines.map((l) => l.text),
    requests: (namespace, pod, name) => entry(namespace, pod, name).requests,
    disconnect() {
      let dropped = 0
      for (const container of logs.values()) {
        for (const res of container.followers) {
          res.destroy()
          dropped++
        }
      }
      return dropped
    },
    async stop() {
      clearInterval(timer)
      for (const container of logs.values()) for (const res of container.followers) res.destroy()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await ownCa?.dispose()
    },
  }
}

function format(line: LogLine, timestamps: boolean): string {
  return timestamps ? `${line.time} ${line.text}\n` : `${line.text}\n`
}

/** Creates the Node (once) and writes its status: Ready, reachable at 127.0.0.1:port. */
async function registerNode(kube: Kube, name: string, port: number): Promise<void> {
  try {
    await kube.core.createNode({
      body: { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { type: 'stand-in' } } },
    })
  } catch (err) {
    if (statusOf(err) !== 409) throw err
  }
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  const status: V1Node['status'] = {
    // Only InternalIP: the API server's default address preference then picks it.
    addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
    daemonEndpoints: { kubeletEndpoint: { Port: port } },
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'KubeletReady',
        message: 'stand-in kubelet is serving logs',
        lastHeartbeatTime: now as unknown as Date,
        lastTransitionTime: now as unknown as Date,
      },
    ],
    capacity: { cpu: '2', memory: '4Gi', pods: '110' },
    allocatable: { cpu: '2', memory: '4Gi', pods: '110' },
  }
  // A merge patch of the status subresource: the node lifecycle controller
  // writes the same Node, and a patch needs no resourceVersion to win against it.
  await kube.core.patchNodeStatus(
    { name, body: { status } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )
}

async function renewLease(kube: Kube, name: string): Promise<void> {
  const renewTime = new Date().toISOString().replace('Z', '000Z')
  const lease = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace: 'kube-node-lease' },
    spec: { holderIdentity: name, leaseDurationSeconds: LEASE_SECONDS, renewTime },
  }
  await kube.objects.patch(
    lease,
    undefined,
    undefined,
    'kubelet-stand-in',
    true,
    PatchStrategy.ServerSideApply,
  )
}
