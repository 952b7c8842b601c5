/**
 * kube-proxy in iptables mode (built by scripts/test-tools.sh from
 * scripts/kube): Services' ClusterIPs for pods, and for this machine's own
 * processes, among them the API server calling admission webhooks.
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { stringify } from 'yaml'
import { toolPath } from '../tools.js'
import { NODE_IP, NODE_NAME, POD_SUBNET } from './network.js'
import { startProcess, waitUntil, type NodeProcess } from './procs.js'

const HEALTHZ = '127.0.0.1:10256'

/** Starts kube-proxy and waits until it has written its first set of rules. */
export async function startKubeProxy(
  dir: string,
  kubeconfigPath: string,
  deadline: number,
): Promise<NodeProcess> {
  const configFile = path.join(dir, 'kube-proxy.yaml')
  await writeFile(
    configFile,
    stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig: kubeconfigPath },
      hostnameOverride: NODE_NAME,
      bindAddress: NODE_IP,
      mode: 'iptables',
      // Traffic from outside the pod subnet to a Service is masqueraded.
      clusterCIDR: POD_SUBNET,
      nodePortAddresses: [`${NODE_IP}/32`],
      healthzBindAddress: HEALTHZ,
      metricsBindAddress: '127.0.0.1:10249',
      // 0, not -999: this machine refuses negative values.
      oomScoreAdj: 0,
      // The machine's conntrack table size and timeouts stay as they are.
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      // NodePorts on 127.0.0.1 would need route_localnet=1 on the whole machine.
      iptables: { localhostNodePorts: false },
    }),
  )
  const proc = startProcess('kube-proxy', toolPath('kube-proxy'), [
    `--config=${configFile}`,
    '--v=2',
  ])
  try {
    // 200 once the first sync of its rules is done.
    await waitUntil(proc, 'its first rule sync (/healthz)', deadline, async () => {
      const res = await fetch(`http://${HEALTHZ}/healthz`, { signal: AbortSignal.timeout(2_000) })
      const text = await res.text()
      return res.ok ? true : `HTTP ${res.status} ${text.slice(0, 300)}`
    })
  } catch (err) {
    await proc.stop()
    throw err
  }
  return proc
}
