/**
 * The pod network, as the node's containerd sets it up for every pod sandbox
 * with the CNI plugins from github.com/containernetworking/plugins
 * (scripts/test-tools.sh builds them into .tools/cni/bin).
 */
import { accessSync, constants } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { repoRoot } from '../tools.js'
import { BRIDGE, NODE_IP, POD_RANGE_START, POD_SUBNET, SERVICE_CIDR } from './network.js'

export const CNI_BIN_DIR = path.join(repoRoot, '.tools', 'cni', 'bin')
const PLUGINS = ['bridge', 'host-local', 'firewall', 'loopback']

/** Fails, naming the install command, when a plugin is missing. */
export function checkCniPlugins(): void {
  for (const plugin of PLUGINS) {
    try {
      accessSync(path.join(CNI_BIN_DIR, plugin), constants.X_OK)
    } catch {
      throw new Error(
        `the CNI plugin ${plugin} is not installed in ${CNI_BIN_DIR}: run \`npm run test-tools\` (scripts/test-tools.sh)`,
      )
    }
  }
}

/**
 * Writes the network configuration list into `confDir`:
 * - bridge: each pod on BRIDGE (its address is the pods' gateway), hairpin
 *   on so a pod reaches itself through its own Service; no IP masquerade and
 *   no default route, since pods talk only to this machine and each other;
 * - host-local: addresses from POD_SUBNET (state under `dataDir`, not
 *   /var/lib/cni), and one route, to the Service range through the gateway
 *   where kube-proxy's NAT happens;
 * - firewall: lets pod traffic through the FORWARD chain, whose policy Docker
 *   sets to DROP; pod-to-pod packets cross it since br_netfilter is on.
 */
export async function writeCniConfig(confDir: string, dataDir: string): Promise<void> {
  await mkdir(confDir, { recursive: true })
  const config = {
    cniVersion: '1.0.0',
    name: 'oml-node',
    plugins: [
      {
        type: 'bridge',
        bridge: BRIDGE,
        isGateway: true,
        isDefaultGateway: false,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: POD_SUBNET, rangeStart: POD_RANGE_START, gateway: NODE_IP }]],
          routes: [{ dst: SERVICE_CIDR }],
          dataDir,
        },
      },
      { type: 'firewall', backend: 'iptables' },
    ],
  }
  await writeFile(path.join(confDir, '10-oml-node.conflist'), JSON.stringify(config, null, 2))
}
