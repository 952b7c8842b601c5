/**
 * The pods' DNS: Debian's dnsmasq on NODE_IP:53, the kubelet's clusterDNS.
 * Pods need one name, `registry.local` (DESIGN 3: the registry's one name for
 * pods, nodes and the runner), which it answers with NODE_IP, where the
 * registry listens for pods. Every other name gets NXDOMAIN from dnsmasq
 * itself: it has no upstream server and reads neither /etc/resolv.conf nor
 * /etc/hosts, so no query leaves this machine. (Service names are not served:
 * in-cluster clients find the API server by the KUBERNETES_SERVICE_HOST
 * address, and the API server calls webhooks by ClusterIP.)
 */
import path from 'node:path'
import { REGISTRY_HOST } from '../../../src/tools/kind/config.js'
import { NODE_IP } from './network.js'
import { startProcess, type NodeProcess } from './procs.js'

export async function startDns(
  dnsmasq: string,
  dir: string,
  deadline: number,
): Promise<NodeProcess> {
  const proc = startProcess('dnsmasq', dnsmasq, [
    '--keep-in-foreground',
    '--log-facility=-',
    '--log-queries',
    // No configuration file, no upstream servers, no hosts file: only what is below.
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    // This one address only (not the machine's others, nor 127.0.0.1).
    `--listen-address=${NODE_IP}`,
    '--bind-interfaces',
    '--port=53',
    // A record of its own: an AAAA query gets "no data" (the name exists), not
    // NXDOMAIN, which some resolvers (musl's) take as "no such name" for both.
    `--host-record=${REGISTRY_HOST},${NODE_IP}`,
    // Any other name: NXDOMAIN, answered here.
    '--address=/#/',
    `--pid-file=${path.join(dir, 'dnsmasq.pid')}`,
    // It drops root once it has its socket; this user exists on every Debian.
    '--user=nobody',
    '--group=nogroup',
  ])
  try {
    await proc.waitForLog(/started, version/, 'starting', deadline)
  } catch (err) {
    await proc.stop()
    throw err
  }
  return proc
}
