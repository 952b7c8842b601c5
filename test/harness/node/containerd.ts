/**
 * The node's container runtime: containerd (Debian's, the one docker.io
 * brings) with runc, as a process of its own: its own configuration, root,
 * state and socket under the cluster's folder, apart from Docker's containerd.
 * Its registry configuration is the one the action gives kind nodes: a
 * certs.d folder with the hosts.toml that src/tools/kind/config.ts writes, so
 * `registry.local:5000/...` images are pulled over plain HTTP as on a runner.
 */
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import {
  CONTAINERD_CERTS_DIR,
  REGISTRY_HOST_PORT,
  registryHostsToml,
  registryHostsTomlPath,
} from '../../../src/tools/kind/config.js'
import { repoRoot, toolPath } from '../tools.js'
import { CNI_BIN_DIR } from './cni.js'
import { runChecked, startProcess, type NodeProcess } from './procs.js'

/** The pause image scripts/test-tools.sh builds (an OCI image layout tarball). */
export const PAUSE_TAR = path.join(repoRoot, '.tools', 'images', 'pause.tar')
/** containerd's namespace for what the CRI (the kubelet) runs. */
const CRI_NAMESPACE = 'k8s.io'

export interface Containerd {
  proc: NodeProcess
  /** `unix://...`, for the kubelet and crictl. */
  endpoint: string
  /** The sandbox image it runs in every pod (imported from PAUSE_TAR). */
  pauseImage: string
  /**
   * Stops and removes every pod sandbox through the CRI (crictl rmp): their
   * containers end, the CNI plugins take their network down (veth, address,
   * iptables rules), their network namespace and mounts go. The kubelet must
   * be stopped first, or it starts them again.
   */
  removeAllPods(): Promise<void>
  stop(): Promise<void>
}

export interface ContainerdPaths {
  /** The cluster's folder. */
  dir: string
  /** The binaries the node uses from the system. */
  containerd: string
  ctr: string
  runc: string
}

/**
 * The name the pause image is imported as, from the tarball's index (where
 * test-tools.sh put it).
 */
export function pauseImageName(): string {
  let tar: Buffer
  try {
    tar = readFileSync(PAUSE_TAR)
  } catch {
    throw new Error(`the pause image is missing (${PAUSE_TAR}): run \`npm run test-tools\``)
  }
  // A tar member is a 512-byte header (name first) and its content, padded to 512.
  for (let offset = 0; offset + 512 <= tar.length;) {
    const name = tar
      .subarray(offset, offset + 100)
      .toString('utf8')
      .replace(/\0.*$/s, '')
    if (!name) break
    const size = parseInt(
      tar
        .subarray(offset + 124, offset + 136)
        .toString('utf8')
        .trim(),
      8,
    )
    if (name === 'index.json' || name === './index.json') {
      const index = JSON.parse(
        tar.subarray(offset + 512, offset + 512 + size).toString('utf8'),
      ) as {
        manifests: { annotations?: Record<string, string> }[]
      }
      const image = index.manifests[0]?.annotations?.['io.containerd.image.name']
      if (!image) throw new Error(`${PAUSE_TAR}: index.json names no image`)
      return image
    }
    offset += 512 + Math.ceil(size / 512) * 512
  }
  throw new Error(`${PAUSE_TAR} has no index.json: run \`npm run test-tools\` again`)
}

function config(dir: string, runc: string, pauseImage: string): string {
  const at = (...parts: string[]): string => JSON.stringify(path.join(dir, ...parts))
  return `# The node's containerd (test/harness/node/containerd.ts); containerd 1.6 reads version 2.
version = 2
root = ${at('containerd', 'root')}
state = ${at('containerd', 'state')}
# Snapshotters and tracing the node does not use: not loaded, so no errors about them.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = ${at('containerd', 'containerd.sock')}

[plugins."io.containerd.internal.v1.opt"]
  path = ${at('containerd', 'opt')}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${JSON.stringify(pauseImage)}
  # This machine refuses a negative oom_score_adj even to root: containerd
  # otherwise asks for one in every sandbox (the kubelet's -998) and fails.
  restrict_oom_score_adj = true
  # Pods' network namespaces under the state folder, not /var/run/netns.
  netns_mounts_under_state_dir = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = ${JSON.stringify(runc)}
        # runc's state apart from any other containerd's /run/containerd/runc.
        Root = ${at('runc')}
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${JSON.stringify(CNI_BIN_DIR)}
    conf_dir = ${at('cni', 'net.d')}

  [plugins."io.containerd.grpc.v1.cri".registry]
    # Per-registry hosts.toml files, as in kind nodes (${CONTAINERD_CERTS_DIR}).
    config_path = ${at(CONTAINERD_CERTS_DIR)}
`
}

/** Starts containerd, waits until it serves, and imports the pause image. */
export async function startContainerd(
  paths: ContainerdPaths,
  deadline: number,
): Promise<Containerd> {
  const { dir } = paths
  const pauseImage = pauseImageName()
  const hostsToml = path.join(dir, registryHostsTomlPath(REGISTRY_HOST_PORT))
  await mkdir(path.dirname(hostsToml), { recursive: true })
  await writeFile(hostsToml, registryHostsToml(REGISTRY_HOST_PORT))
  await mkdir(path.join(dir, 'containerd'), { recursive: true })
  const configFile = path.join(dir, 'containerd', 'config.toml')
  await writeFile(configFile, config(dir, paths.runc, pauseImage))
  const socket = path.join(dir, 'containerd', 'containerd.sock')

  const proc = startProcess('containerd', paths.containerd, ['--config', configFile])
  try {
    await proc.waitForLog(/containerd successfully booted/, 'starting', deadline)
    // kind's way of preloading images into a node: into the CRI's namespace, unpacked.
    await runChecked(
      paths.ctr,
      ['--address', socket, '--namespace', CRI_NAMESPACE, 'images', 'import', PAUSE_TAR],
      { timeoutMs: Math.max(1_000, deadline - Date.now()) },
    )
  } catch (err) {
    await proc.stop()
    throw err
  }

  const endpoint = `unix://${socket}`
  return {
    proc,
    endpoint,
    pauseImage,
    async removeAllPods() {
      if (!proc.running()) throw new Error(`containerd is not running: ${await proc.exited}`)
      // Its own configuration file: crictl reads /etc/crictl.yaml otherwise.
      const crictlConfig = path.join(dir, 'crictl.yaml')
      await writeFile(
        crictlConfig,
        `runtime-endpoint: ${endpoint}\nimage-endpoint: ${endpoint}\ntimeout: 60\n`,
      )
      await runChecked(toolPath('crictl'), ['--config', crictlConfig, 'rmp', '--all', '--force'], {
        timeoutMs: 120_000,
      })
    },
    stop: () => proc.stop(),
  }
}
