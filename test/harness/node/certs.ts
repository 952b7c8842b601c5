/**
 * The node's TLS: a CA of its own (the API server's CA is thrown away once
 * kube.ts has made its certificate) that signs the kubelet's serving
 * certificate for NODE_IP, the API server's client certificate for kubelets,
 * and kube-scheduler's serving certificate. The API server checks the
 * kubelet against this CA; the kubelet checks the API server's certificate.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { makeTestCA } from '../certs.js'
import { NODE_IP } from './network.js'

export interface NodeCerts {
  /** The CA's certificate file. */
  ca: string
  caPem: string
  kubelet: { cert: string; key: string }
  /** The API server's client certificate for the kubelet (group system:masters). */
  apiserverClient: { cert: string; key: string }
  scheduler: { cert: string; key: string }
}

export async function makeNodeCerts(dir: string): Promise<NodeCerts> {
  const pki = path.join(dir, 'pki')
  await mkdir(pki, { recursive: true, mode: 0o700 })
  const ca = await makeTestCA()
  try {
    const save = async (name: string, pair: { cert: string; key: string }) => {
      const files = { cert: path.join(pki, `${name}.crt`), key: path.join(pki, `${name}.key`) }
      await writeFile(files.cert, pair.cert)
      await writeFile(files.key, pair.key, { mode: 0o600 })
      return files
    }
    const caFile = path.join(pki, 'node-ca.crt')
    await writeFile(caFile, ca.caPem)
    return {
      ca: caFile,
      caPem: ca.caPem,
      kubelet: await save('kubelet', await ca.issue([NODE_IP])),
      apiserverClient: await save(
        'apiserver-kubelet-client',
        await ca.issueClient('kube-apiserver-kubelet-client', 'system:masters'),
      ),
      scheduler: await save('scheduler', await ca.issue(['127.0.0.1', 'localhost'])),
    }
  } finally {
    await ca.dispose()
  }
}
