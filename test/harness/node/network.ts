/**
 * The node's network on this machine: one Linux bridge whose address is at
 * once the pods' gateway, the node's InternalIP, and where the API server,
 * the registry and DNS listen for pods. Pods get no default route (the CNI
 * config gives them the pod subnet and the Service range only), so nothing
 * they do reaches beyond this machine.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { SERVICE_CIDR } from '../kube.js'
import { run, runChecked } from './procs.js'

/** The node's name in the API. */
export const NODE_NAME = 'oml-node'
/** The bridge the CNI bridge plugin puts pods on (made here first, so the API server can bind its address). */
export const BRIDGE = 'oml-node0'
/** Pod addresses. */
export const POD_SUBNET = '10.244.0.0/24'
export const POD_PREFIX_LENGTH = 24
/** The bridge's address: pods' gateway, the node's InternalIP, the API server's, DNS's and the registry's for pods. */
export const NODE_IP = '10.244.0.1'
/** host-local hands out pod addresses from here on. */
export const POD_RANGE_START = '10.244.0.10'
export { SERVICE_CIDR }

/**
 * Kernel settings the node needs or its parts change (the kubelet sets the
 * vm and kernel ones itself): their values before the run are put back when
 * the cluster stops.
 */
export const TOUCHED_SYSCTLS = [
  'net/ipv4/ip_forward',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
  'net/ipv4/conf/all/route_localnet',
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
]

const sysctlPath = (name: string): string => `/proc/sys/${name}`

/** Current values of TOUCHED_SYSCTLS (those this kernel has). */
export function readSysctls(): Record<string, string> {
  const values: Record<string, string> = {}
  for (const name of TOUCHED_SYSCTLS) {
    if (existsSync(sysctlPath(name))) values[name] = readFileSync(sysctlPath(name), 'utf8').trim()
  }
  return values
}

/** Puts back values read by readSysctls; returns what it changed back. */
export function restoreSysctls(values: Record<string, string>): string[] {
  const restored: string[] = []
  for (const [name, value] of Object.entries(values)) {
    if (!existsSync(sysctlPath(name))) continue
    if (readFileSync(sysctlPath(name), 'utf8').trim() === value) continue
    writeFileSync(sysctlPath(name), `${value}\n`)
    restored.push(`${name.replaceAll('/', '.')}=${value}`)
  }
  return restored
}

/**
 * What pods on a bridge need from the kernel: forwarding, and bridged
 * traffic going through iptables (br_netfilter), without which a pod's
 * packets to a Service whose endpoint is on the same bridge bypass
 * kube-proxy's NAT on the way back.
 */
export async function prepareKernel(): Promise<void> {
  if (!existsSync(sysctlPath('net/bridge/bridge-nf-call-iptables'))) {
    const loaded = await run('modprobe', ['br_netfilter']).catch((err: Error) => ({
      code: -1,
      stdout: '',
      stderr: err.message,
    }))
    if (loaded.code !== 0 || !existsSync(sysctlPath('net/bridge/bridge-nf-call-iptables'))) {
      throw new Error(
        `the kernel module br_netfilter is not loaded and could not be (modprobe br_netfilter: ${loaded.stderr.trim()})`,
      )
    }
  }
  writeFileSync(sysctlPath('net/ipv4/ip_forward'), '1\n')
  writeFileSync(sysctlPath('net/bridge/bridge-nf-call-iptables'), '1\n')
}

export function bridgeExists(): boolean {
  return existsSync(`/sys/class/net/${BRIDGE}`)
}

/**
 * The bridge with the node's address, up, and a route for the Service range
 * through it: connections from this machine to a ClusterIP then start from
 * NODE_IP and leave through the bridge after kube-proxy's NAT, whatever other
 * routes the machine has. Removing the bridge removes its routes.
 */
export async function createBridge(): Promise<void> {
  if (bridgeExists()) throw new Error(`network interface ${BRIDGE} exists already`)
  await runChecked('ip', ['link', 'add', 'name', BRIDGE, 'type', 'bridge'])
  try {
    await runChecked('ip', ['addr', 'add', `${NODE_IP}/${POD_PREFIX_LENGTH}`, 'dev', BRIDGE])
    await runChecked('ip', ['link', 'set', BRIDGE, 'up'])
    await runChecked('ip', ['route', 'add', SERVICE_CIDR, 'dev', BRIDGE, 'src', NODE_IP])
  } catch (err) {
    await deleteBridge()
    throw err
  }
}

/** Removes the bridge (and with it its address and routes); true if there was one. */
export async function deleteBridge(): Promise<boolean> {
  if (!bridgeExists()) return false
  await runChecked('ip', ['link', 'delete', BRIDGE])
  return true
}
