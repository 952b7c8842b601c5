/**
 * The node's kubelet (built by scripts/test-tools.sh from scripts/kube): it
 * registers NODE_NAME at NODE_IP and runs pods through containerd's CRI.
 * What this machine needs of it: cgroup v1 allowed (failCgroupV1: false) with
 * the cgroupfs driver; its pods' cgroups under a root of their own, so all of
 * them can be found and removed; no negative oom_score_adj for itself.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { stringify } from 'yaml'
import type { Kube } from '../../../src/kube/client.js'
import { waitFor } from '../../../src/kube/wait.js'
import { toolPath } from '../tools.js'
import type { NodeCerts } from './certs.js'
import { NODE_IP, NODE_NAME } from './network.js'
import { startProcess, type NodeProcess } from './procs.js'

export const KUBELET_PORT = 10250
export const CLUSTER_DOMAIN = 'cluster.local'

export interface KubeletOptions {
  dir: string
  kubeconfigPath: string
  certs: NodeCerts
  /** containerd's CRI endpoint (`unix://...`). */
  runtimeEndpoint: string
  /** The cgroup (v1, cgroupfs path) pods go under; must exist in every controller. */
  cgroupRoot: string
  /** The pods' DNS server. */
  dnsServer: string
}

interface NodeObject {
  metadata?: { name?: string }
  spec?: { taints?: { key: string; effect: string }[] }
  status?: { conditions?: { type: string; status: string; message?: string }[] }
}

function kubeletConfig(options: KubeletOptions): unknown {
  const { dir, certs } = options
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // Served where the API server dials it (logs, exec): the node's registered address.
    address: NODE_IP,
    port: KUBELET_PORT,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    tlsCertFile: certs.kubelet.cert,
    tlsPrivateKeyFile: certs.kubelet.key,
    rotateCertificates: false,
    serverTLSBootstrap: false,
    // Only the API server (its client certificate) gets in; what it may do is asked of the API.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: certs.ca },
    },
    authorization: { mode: 'Webhook' },
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: options.cgroupRoot,
    containerRuntimeEndpoint: options.runtimeEndpoint,
    clusterDNS: [options.dnsServer],
    clusterDomain: CLUSTER_DOMAIN,
    // The pods' resolv.conf comes from here (plus clusterDNS): not the machine's own resolvers.
    resolvConf: path.join(dir, 'resolv.conf'),
    podLogsDir: path.join(dir, 'pod-logs'),
    volumePluginDir: path.join(dir, 'kubelet-plugins'),
    // Its lease renewed every 2 s (a quarter of this): a frozen kubelet shows soon (cluster.ts).
    nodeLeaseDurationSeconds: 8,
    // 0, not the kubelet's -999: this machine refuses negative values.
    oomScoreAdj: 0,
    // The node's images are imported or pulled once per cluster: no garbage collection racing the tests.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
  }
}

/** Starts the kubelet and waits until its node is Ready and schedulable. */
export async function startKubelet(
  options: KubeletOptions,
  kube: Kube,
  deadline: number,
): Promise<NodeProcess> {
  const { dir } = options
  await mkdir(path.join(dir, 'kubelet'), { recursive: true })
  await writeFile(path.join(dir, 'resolv.conf'), `nameserver ${options.dnsServer}\n`)
  const configFile = path.join(dir, 'kubelet', 'config.yaml')
  await writeFile(configFile, stringify(kubeletConfig(options)))
  const proc = startProcess('kubelet', toolPath('kubelet'), [
    `--config=${configFile}`,
    `--kubeconfig=${options.kubeconfigPath}`,
    `--root-dir=${path.join(dir, 'kubelet')}`,
    `--hostname-override=${NODE_NAME}`,
    // An address the API server can dial, not a host name it cannot resolve.
    `--node-ip=${NODE_IP}`,
    '--v=2',
  ])
  try {
    await Promise.race([
      waitFor<NodeObject>(
        kube,
        { apiVersion: 'v1', kind: 'Node', name: NODE_NAME },
        (nodes) => nodes.some(isReady),
        {
          deadline,
          what: `node ${NODE_NAME} to be Ready`,
          diagnose: async (nodes) => JSON.stringify(nodes.map((n) => n.status?.conditions ?? [])),
        },
      ),
      proc.exited.then((how) => {
        throw new Error(`kubelet ${how} before its node was Ready`)
      }),
    ])
  } catch (err) {
    await proc.stop()
    throw new Error(`${(err as Error).message}\n${proc.tail()}`, { cause: err })
  }
  return proc
}

/** Ready, and no longer tainted as not ready (the node lifecycle controller lifts that taint). */
function isReady(node: NodeObject): boolean {
  const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
  const tainted = node.spec?.taints?.some((t) => t.key.startsWith('node.kubernetes.io/'))
  return Boolean(ready) && !tainted
}
