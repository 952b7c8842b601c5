/**
 * `registry.local:5000` for the node cluster, reached under that one name as
 * on a runner (DESIGN 3): go-containerregistry's registry on 127.0.0.1:5000
 * (it only listens on localhost), where this machine reaches it, the node's
 * containerd included, through the action's own `127.0.0.1 registry.local`
 * line in /etc/hosts (src/phases/hosts.ts); and a TCP relay on NODE_IP:5000
 * to it, where pods reach it, `registry.local` resolving to NODE_IP in their
 * DNS (dns.ts).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { ensureHostsEntry } from '../../../src/phases/hosts.js'
import { REGISTRY_HOST_PORT, REGISTRY_PORT } from '../../../src/tools/kind/config.js'
import { dockerChecked } from '../docker.js'
import { startRegistry, type TestRegistry } from '../registry.js'
import { NODE_IP } from './network.js'

export interface NodeRegistry {
  /** `127.0.0.1:5000`: where test code on this machine pushes and pulls (plain HTTP). */
  host: string
  /** `registry.local:5000`: the name in image references, for pods, the node and this machine. */
  name: string
  /** Its process id (the cluster's record of what to stop). */
  pid: number
  /**
   * Pushes an image the Docker engine holds as `127.0.0.1:5000/<repository>:<tag>`
   * and returns its reference by digest under the registry's name,
   * `registry.local:5000/<repository>@sha256:...`.
   */
  pushFromDocker(image: string, repository: string, tag?: string): Promise<string>
  /** What the registry logged, and what the relay saw go wrong. */
  log(): string
  stop(): Promise<void>
}

/** Relays every connection to NODE_IP:port on to 127.0.0.1:port. */
async function startRelay(port: number, problems: string[]): Promise<Server> {
  const sockets = new Set<Socket>()
  const server = createServer((inbound) => {
    const outbound = createConnection({ host: '127.0.0.1', port })
    for (const s of [inbound, outbound]) {
      sockets.add(s)
      s.once('close', () => sockets.delete(s))
    }
    inbound.pipe(outbound)
    outbound.pipe(inbound)
    const fail = (side: string) => (err: Error) => {
      problems.push(`relay ${side}: ${err.message}`)
      inbound.destroy()
      outbound.destroy()
    }
    inbound.on('error', fail(`from ${inbound.remoteAddress}`))
    outbound.on('error', fail('to 127.0.0.1'))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, NODE_IP, resolve)
  })
  // Open connections must not keep close() waiting.
  const close = server.close.bind(server)
  server.close = (callback) => {
    for (const s of sockets) s.destroy()
    return close(callback)
  }
  return server
}

/**
 * Starts the registry and its relay and makes `registry.local` resolve on this
 * machine. `onHostsLine` is told when the hosts line was added here (so it
 * is removed at the end, and only then).
 */
export async function startNodeRegistry(
  onHostsLine: (added: boolean) => Promise<void>,
): Promise<NodeRegistry> {
  let registry: TestRegistry
  try {
    registry = await startRegistry({ port: REGISTRY_PORT })
  } catch (err) {
    throw new Error(
      `the registry cannot listen on 127.0.0.1:${REGISTRY_PORT} (is something else there? \`ss -ltnp 'sport = ${REGISTRY_PORT}'\`): ${(err as Error).message}`,
      { cause: err },
    )
  }
  const problems: string[] = []
  let relay: Server
  try {
    relay = await startRelay(REGISTRY_PORT, problems)
    await onHostsLine(
      await ensureHostsEntry({
        path: '/etc/hosts',
        isRoot: true,
        run: () => Promise.reject(new Error('runs as root: no sudo')),
      }),
    )
  } catch (err) {
    await registry.stop()
    throw err
  }
  const host = `127.0.0.1:${REGISTRY_PORT}`
  return {
    host,
    name: REGISTRY_HOST_PORT,
    pid: registry.pid,
    async pushFromDocker(image, repository, tag = 'latest') {
      const target = `${host}/${repository}:${tag}`
      await dockerChecked(['tag', image, target])
      // Docker speaks plain HTTP to 127.0.0.0/8 registries by default.
      const output = await dockerChecked(['push', target])
      const digest = /digest: (sha256:[0-9a-f]{64})/.exec(output)?.[1]
      if (!digest) throw new Error(`docker push ${target} printed no digest:\n${output}`)
      await dockerChecked(['rmi', target])
      return `${REGISTRY_HOST_PORT}/${repository}@${digest}`
    },
    log: () => [registry.log(), ...problems].join('\n'),
    async stop() {
      await new Promise((resolve) => relay.close(resolve))
      await registry.stop()
    },
  }
}
