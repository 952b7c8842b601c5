/**
 * kube-scheduler (built by scripts/test-tools.sh from scripts/kube): puts
 * pods on the node. Its health endpoint is served on 127.0.0.1 with a
 * certificate of the node's CA, so the wait checks whom it talks to.
 */
import { request } from 'node:https'
import { createServer, type AddressInfo } from 'node:net'
import { toolPath } from '../tools.js'
import type { NodeCerts } from './certs.js'
import { startProcess, waitUntil, type NodeProcess } from './procs.js'

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

function getStatus(url: string, ca: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, agent: false, timeout: 2_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    req.on('timeout', () => req.destroy(new Error('no answer in 2 s')))
    req.on('error', reject)
    req.end()
  })
}

/** Starts kube-scheduler and waits until it is ready (/readyz: its caches synced). */
export async function startScheduler(
  kubeconfigPath: string,
  certs: NodeCerts,
  deadline: number,
): Promise<NodeProcess> {
  const port = await freePort()
  const proc = startProcess('kube-scheduler', toolPath('kube-scheduler'), [
    `--kubeconfig=${kubeconfigPath}`,
    // Its own checks of who asks for /readyz and /metrics go to the API server too.
    `--authentication-kubeconfig=${kubeconfigPath}`,
    `--authorization-kubeconfig=${kubeconfigPath}`,
    // One instance, no lease to wait for.
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    `--tls-cert-file=${certs.scheduler.cert}`,
    `--tls-private-key-file=${certs.scheduler.key}`,
    '--v=2',
  ])
  try {
    await waitUntil(proc, 'ready (/readyz)', deadline, async () => {
      const res = await getStatus(`https://127.0.0.1:${port}/readyz`, certs.caPem)
      return res.status === 200 ? true : `HTTP ${res.status} ${res.text.slice(0, 300)}`
    })
  } catch (err) {
    await proc.stop()
    throw err
  }
  return proc
}
