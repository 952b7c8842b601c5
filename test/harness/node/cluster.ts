/**
 * A whole Kubernetes cluster from real parts on this machine, for one test
 * file: the control plane of ../kube.ts (etcd, kube-apiserver,
 * kube-controller-manager) plus kube-scheduler, and one node: containerd with
 * runc, the kubelet, CNI bridge networking, kube-proxy, and the pods' DNS; next
 * to it `registry.local:5000`, the registry pods and the node pull from.
 *
 *   const cluster = await startNodeCluster()
 *   ... cluster.kube.kubeconfig, cluster.client, cluster.registry.pushFromDocker(...)
 *   await cluster.stop()
 *
 * What runs where (all on this machine, nothing reachable from elsewhere):
 * - bridge oml-node0 with 10.244.0.1/24 (NODE_IP): pods' gateway, the node's
 *   InternalIP; pods get 10.244.0.10 and up, and routes to the pod subnet and
 *   the Service range only;
 * - kube-apiserver on https://10.244.0.1:<random port> (the `kubernetes`
 *   Service, 10.0.0.1:443, points there); etcd on 127.0.0.1;
 * - the kubelet on 10.244.0.1:10250, kube-proxy's health on 127.0.0.1:10256,
 *   kube-scheduler's on 127.0.0.1:<random port>;
 * - registry.local:5000: the registry on 127.0.0.1:5000 and a relay on
 *   10.244.0.1:5000; `127.0.0.1 registry.local` in /etc/hosts (added if
 *   missing, removed at the end if added here); dnsmasq on 10.244.0.1:53
 *   answers registry.local with 10.244.0.1 and nothing else.
 *
 * It takes root (containerd, iptables, mounts), one cluster per machine at a
 * time (a lock; other test files wait for it), and stop() leaves the machine
 * as it found it. Each process (control plane included) logs to
 * .tools/logs/node/<name>.log, kept until the next cluster starts.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { connect, type Kube } from '../../../src/kube/client.js'
import { startKube, type TestKube } from '../kube.js'
import { toolPath } from '../tools.js'
import { makeNodeCerts } from './certs.js'
import { checkCniPlugins, writeCniConfig } from './cni.js'
import { startContainerd, type Containerd } from './containerd.js'
import { startDns } from './dns.js'
import { snapshotChains } from './iptables.js'
import { startKubelet } from './kubelet.js'
import { startKubeProxy } from './kube-proxy.js'
import {
  cgroupControllers,
  readState,
  removeLeftovers,
  startTime,
  writeState,
  type NodeState,
} from './leftovers.js'
import { lockNode } from './lock.js'
import {
  BRIDGE,
  bridgeExists,
  createBridge,
  NODE_IP,
  NODE_NAME,
  prepareKernel,
  readSysctls,
} from './network.js'
import { NODE_LOG_DIR, type NodeProcess } from './procs.js'
import { startNodeRegistry, type NodeRegistry } from './registry.js'
import { startScheduler } from './scheduler.js'

export { NODE_IP, NODE_NAME, POD_SUBNET, SERVICE_CIDR } from './network.js'
export { KUBERNETES_SERVICE_IP } from '../kube.js'
export type { NodeRegistry } from './registry.js'

export interface NodeCluster {
  /** The control plane: API server URL, CA, admin token, kubeconfig, raw requests. */
  kube: TestKube
  /** The action's own API clients (src/kube/client.ts) on the admin kubeconfig. */
  client: Kube
  /** `registry.local:5000`. */
  registry: NodeRegistry
  /** The node's name and address (its InternalIP, the bridge's address). */
  nodeName: string
  nodeIP: string
  /** The cluster's folder (configuration, containerd's and the kubelet's data); removed by stop(). */
  dir: string
  /** Where each process's log is (<name>.log); kept after stop(). */
  logDir: string
  /** The last lines of every process's log: for failure messages. */
  log(): string
  /**
   * Freezes the kubelet (SIGSTOP), as a node that stops answering: its pods'
   * containers go on, nothing about them reaches the API, and the node turns
   * NotReady after NODE_MONITOR_GRACE_S. Returns the function that thaws it.
   */
  freezeKubelet(): () => void
  /** Stops everything and removes what it made; throws naming what could not be removed. Safe to call twice. */
  stop(): Promise<void>
}

export interface StartNodeClusterOptions {
  /** How long starting may take, waiting for another test file's cluster included (default 5 min). */
  timeoutMs?: number
}

/** How long the node may go without renewing its lease before it is NotReady. */
const NODE_MONITOR_GRACE_S = 16

/** The kubelet's cgroup root: every pod's cgroup is under it, in each controller. */
const CGROUP = 'oml-chains-node'

/** Programs from Debian packages that scripts/test-tools.sh installs. */
const SYSTEM_COMMANDS: Record<string, string> = {
  containerd: 'containerd',
  ctr: 'containerd',
  runc: 'runc',
  dnsmasq: 'dnsmasq-base',
  ip: 'iproute2',
  iptables: 'iptables',
  'iptables-save': 'iptables',
  'iptables-restore': 'iptables',
  umount: 'mount',
  flock: 'util-linux',
}

/** The absolute path of a system command, or an error naming its package. */
function systemCommand(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin']
  for (const dir of dirs.filter(Boolean)) {
    const file = path.join(dir, name)
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {
      // Not here.
    }
  }
  throw new Error(
    `${name} is missing: run \`npm run test-tools\` (it installs the Debian package ${SYSTEM_COMMANDS[name]})`,
  )
}

/** The cluster this process runs, if any (for nodeRegistry()). */
let running: NodeCluster | undefined

/** The registry of the node cluster this test process runs: push images into it from anywhere. */
export function nodeRegistry(): NodeRegistry {
  if (!running)
    throw new Error('no node cluster runs in this test process: startNodeCluster() first')
  return running.registry
}

/** A cluster whose test process died without stopping it: removed from its record. */
async function sweepDeadCluster(): Promise<void> {
  const previous = await readState()
  if (!previous) return
  const problems = await removeLeftovers(previous)
  if (problems.length > 0) {
    throw new Error(
      `a previous node cluster's leftovers could not be removed:\n- ${problems.join('\n- ')}`,
    )
  }
}

/**
 * Runs `look` while no node cluster runs on this machine (holding the lock,
 * after removing a dead one's leftovers): for tests that compare the machine
 * before a cluster and after it, without another test file's cluster between.
 */
export async function whileNoNodeCluster<T>(
  look: () => Promise<T>,
  timeoutMs = 300_000,
): Promise<T> {
  const unlock = await lockNode(Date.now() + timeoutMs)
  try {
    await sweepDeadCluster()
    return await look()
  } finally {
    await unlock()
  }
}

/** The kubelet's cgroup root in every controller; cpuset needs its CPUs and memory nodes set. */
function createCgroupRoot(): void {
  for (const controller of cgroupControllers()) {
    const dir = path.join(controller, CGROUP)
    mkdirSync(dir, { recursive: true })
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      const own = path.join(dir, file)
      if (existsSync(own) && readFileSync(own, 'utf8').trim() === '') {
        writeFileSync(own, readFileSync(path.join(controller, file), 'utf8'))
      }
    }
  }
}

/** Starts the whole cluster and waits until its node is Ready; see the top of this file. */
export async function startNodeCluster(
  options: StartNodeClusterOptions = {},
): Promise<NodeCluster> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the node cluster needs root (containerd, the kubelet, iptables, mounts): run the tests as root',
    )
  }
  const deadline = Date.now() + (options.timeoutMs ?? 300_000)
  const bins = {
    containerd: systemCommand('containerd'),
    ctr: systemCommand('ctr'),
    runc: systemCommand('runc'),
    dnsmasq: systemCommand('dnsmasq'),
  }
  for (const name of Object.keys(SYSTEM_COMMANDS)) systemCommand(name)
  for (const tool of ['kubelet', 'kube-proxy', 'kube-scheduler', 'crictl'] as const) toolPath(tool)
  checkCniPlugins()

  const unlock = await lockNode(deadline)
  const procs: NodeProcess[] = []
  let kube: TestKube | undefined
  let registry: NodeRegistry | undefined
  let containerd: Containerd | undefined
  let state: NodeState | undefined

  const record = async (pid: number): Promise<void> => {
    const start = startTime(pid)
    if (state && start) {
      state.processes.push({ pid, start })
      await writeState(state)
    }
  }
  const logs = (): string =>
    [
      ...procs.map((p) => p.tail(20)),
      kube?.log() ?? '',
      registry ? `--- registry ---\n${registry.log().slice(-2000)}` : '',
    ]
      .filter(Boolean)
      .join('\n')

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const problems: string[] = []
      const attempt = async (what: string, step: () => Promise<unknown>) => {
        try {
          await step()
        } catch (err) {
          problems.push(`${what}: ${(err as Error).message}`)
        }
      }
      try {
        // The scheduler, kube-proxy and the kubelet first: the kubelet would
        // start again the pods that containerd removes next.
        const last = new Set(['containerd', 'dnsmasq'])
        for (const proc of [...procs].reverse().filter((p) => !last.has(p.name))) {
          await attempt(proc.name, () => proc.stop())
        }
        const runtime = containerd
        if (runtime?.proc.running()) await attempt('removing pods', () => runtime.removeAllPods())
        await attempt('containerd', async () => runtime?.stop())
        await attempt('control plane', async () => kube?.stop())
        for (const proc of procs) await attempt(proc.name, () => proc.stop())
        await attempt('registry', async () => registry?.stop())
        if (state) problems.push(...(await removeLeftovers(state)))
      } finally {
        if (running?.stop === stop) running = undefined
        await unlock()
      }
      if (problems.length > 0) {
        throw new Error(`the node cluster did not stop cleanly:\n- ${problems.join('\n- ')}`)
      }
    })())

  try {
    await sweepDeadCluster()
    if (bridgeExists()) {
      throw new Error(
        `network interface ${BRIDGE} exists and is not from a node cluster this harness knows of: remove it (ip link delete ${BRIDGE})`,
      )
    }

    const dir = await mkdtemp(path.join(tmpdir(), 'oml-node-'))
    state = {
      dir,
      otherDirs: [],
      cgroup: CGROUP,
      processes: [],
      chainsBefore: await snapshotChains(),
      sysctlsBefore: readSysctls(),
      hostsLineAdded: false,
    }
    await writeState(state)

    await prepareKernel()
    await createBridge()
    registry = await startNodeRegistry(async (added) => {
      state!.hostsLineAdded = added
      await writeState(state!)
    })
    await record(registry.pid)
    const dns = await startDns(bins.dnsmasq, dir, deadline)
    procs.push(dns)
    await record(dns.pid)

    const certs = await makeNodeCerts(dir)
    kube = await startKube({
      controllerManager: true,
      // A node whose kubelet stops renewing its lease (every 2 s, kubelet.ts) is
      // NotReady after this, not the default 50 s: a test can pause one and see it.
      controllerManagerArgs: [`--node-monitor-grace-period=${NODE_MONITOR_GRACE_S}s`],
      address: NODE_IP,
      serviceAccounts: true,
      logDir: NODE_LOG_DIR,
      timeoutMs: Math.max(1_000, deadline - Date.now()),
      apiserverArgs: [
        // The kubelet's serving certificate is checked; the API server shows its own to it.
        `--kubelet-certificate-authority=${certs.ca}`,
        `--kubelet-client-certificate=${certs.apiserverClient.cert}`,
        `--kubelet-client-key=${certs.apiserverClient.key}`,
        // The node's address, never its name (which resolves nowhere).
        '--kubelet-preferred-address-types=InternalIP',
        // As kind and kubeadm clusters allow.
        '--allow-privileged=true',
      ],
    })
    // Its folder holds the kubeconfig; its processes are recorded too, should this process die.
    state.otherDirs.push(path.dirname(kube.kubeconfigPath))
    for (const pid of kube.pids()) await record(pid)
    const client = connect(kube.kubeconfig)

    createCgroupRoot()
    await writeCniConfig(path.join(dir, 'cni', 'net.d'), path.join(dir, 'cni', 'networks'))
    containerd = await startContainerd({ dir, ...bins }, deadline)
    procs.push(containerd.proc)
    await record(containerd.proc.pid)

    const kubelet = await startKubelet(
      {
        dir,
        kubeconfigPath: kube.kubeconfigPath,
        certs,
        runtimeEndpoint: containerd.endpoint,
        cgroupRoot: `/${CGROUP}`,
        dnsServer: NODE_IP,
      },
      client,
      deadline,
    )
    procs.push(kubelet)
    await record(kubelet.pid)

    const [kubeProxy, scheduler] = await Promise.all([
      startKubeProxy(dir, kube.kubeconfigPath, deadline),
      startScheduler(kube.kubeconfigPath, certs, deadline),
    ])
    procs.push(kubeProxy, scheduler)
    await record(kubeProxy.pid)
    await record(scheduler.pid)

    const cluster: NodeCluster = {
      kube,
      client,
      registry,
      nodeName: NODE_NAME,
      nodeIP: NODE_IP,
      dir,
      logDir: NODE_LOG_DIR,
      log: logs,
      freezeKubelet() {
        process.kill(kubelet.pid, 'SIGSTOP')
        return () => process.kill(kubelet.pid, 'SIGCONT')
      },
      stop,
    }
    running = cluster
    return cluster
  } catch (err) {
    const message = `starting the node cluster failed: ${(err as Error).message}`
    const tails = logs()
    await stop().catch((stopErr: Error) => {
      throw new Error(`${message}\n${stopErr.message}\n${tails}`, { cause: err })
    })
    throw new Error(`${message}\n${tails}`, { cause: err })
  }
}
