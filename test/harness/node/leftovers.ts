/**
 * Everything a node cluster leaves on the machine, and its removal. While a
 * cluster runs, a record of what it changed sits in NODE_STATE_DIR/state.json
 * (its folder, the processes it started, the iptables chains and kernel
 * settings there were before, whether it added the hosts line). Stopping
 * removes exactly that; a cluster whose test process died without stopping
 * it is removed the same way by the next one to start, from its record.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, rmdirSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { removeHostsEntry } from '../../../src/phases/hosts.js'
import { removeAddedChains, type ChainSnapshot } from './iptables.js'
import { NODE_STATE_DIR } from './lock.js'
import { deleteBridge, restoreSysctls } from './network.js'
import { run } from './procs.js'

const STATE_FILE = path.join(NODE_STATE_DIR, 'state.json')
const CGROUP_FS = '/sys/fs/cgroup'

/** A process this harness started: its start time tells it apart from a later one with the same pid. */
export interface StartedProcess {
  pid: number
  start: string
}

export interface NodeState {
  /** The cluster's folder (configuration, containerd's and the kubelet's data, the CNI's). */
  dir: string
  /** Folders of its parts made elsewhere (the control plane's, by ../kube.ts). */
  otherDirs: string[]
  /** The kubelet's cgroup root, one folder under each cgroup v1 controller. */
  cgroup: string
  processes: StartedProcess[]
  chainsBefore: ChainSnapshot
  sysctlsBefore: Record<string, string>
  hostsLineAdded: boolean
}

export async function writeState(state: NodeState): Promise<void> {
  await writeFile(STATE_FILE, JSON.stringify(state, null, 2))
}

export async function readState(): Promise<NodeState | undefined> {
  try {
    return JSON.parse(await readFile(STATE_FILE, 'utf8')) as NodeState
  } catch {
    return undefined
  }
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces: count from after its `)`.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

function alive(p: StartedProcess): boolean {
  return startTime(p.pid) === p.start
}

/** Processes whose command line names `dir`: containerd's shims (`-address DIR/...`) and the like. */
function processesNaming(dir: string): StartedProcess[] {
  const found: StartedProcess[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (cmdline.split('\0').some((arg) => arg === dir || arg.includes(`${dir}/`))) {
        const start = startTime(pid)
        if (start) found.push({ pid, start })
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return found
}

/**
 * Cgroup hierarchies: on cgroup v1 those mounted under /sys/fs/cgroup (cpu,
 * memory, pids, ..., the named systemd one), each once (links such as
 * cpu,cpuacct -> cpu are skipped); on cgroup v2 the one at /sys/fs/cgroup,
 * whose subfolders are cgroups, not hierarchies.
 */
export function cgroupControllers(): string[] {
  if (!existsSync(CGROUP_FS)) return []
  if (existsSync(path.join(CGROUP_FS, 'cgroup.controllers'))) return [CGROUP_FS]
  return readdirSync(CGROUP_FS)
    .map((name) => path.join(CGROUP_FS, name))
    .filter((dir) => !lstatSync(dir).isSymbolicLink() && existsSync(path.join(dir, 'cgroup.procs')))
}

/** Folders of a cgroup tree, children before parents. */
function cgroupTree(dir: string): string[] {
  if (!existsSync(dir)) return []
  const children = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => cgroupTree(path.join(dir, e.name)))
  return [...children, dir]
}

/** Every process in the cgroup (all controllers): pods' containers, whoever started them. */
function processesInCgroup(cgroup: string): StartedProcess[] {
  const pids = new Set<number>()
  for (const controller of cgroupControllers()) {
    for (const dir of cgroupTree(path.join(controller, cgroup))) {
      try {
        for (const line of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
          if (line) pids.add(Number(line))
        }
      } catch {
        // Removed meanwhile.
      }
    }
  }
  return [...pids].flatMap((pid) => {
    const start = startTime(pid)
    return start ? [{ pid, start }] : []
  })
}

/** SIGKILLs the processes and waits until they are gone (bounded). */
async function killAll(processes: StartedProcess[], deadline: number): Promise<string[]> {
  const targets = processes.filter(alive)
  for (const p of targets) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {
      // Gone meanwhile.
    }
  }
  for (let pause = 10; targets.some(alive); pause = Math.min(pause * 2, 200)) {
    if (Date.now() > deadline) {
      return targets.filter(alive).map((p) => `process ${p.pid} did not end after SIGKILL`)
    }
    await delay(pause)
  }
  return []
}

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  const decode = (field: string): string =>
    field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => decode(line.split(' ')[4]!))
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
}

async function unmountAll(dir: string): Promise<string[]> {
  const problems: string[] = []
  for (const point of mountsUnder(dir)) {
    const result = await run('umount', [point])
    if (result.code !== 0) {
      // Still busy (a process holds it): detach it now, the kernel frees it when released.
      const lazy = await run('umount', ['--lazy', point])
      if (lazy.code !== 0) problems.push(`umount ${point}: ${lazy.stderr.trim()}`)
    }
  }
  return problems
}

function removeCgroups(cgroup: string): string[] {
  const problems: string[] = []
  for (const controller of cgroupControllers()) {
    for (const dir of cgroupTree(path.join(controller, cgroup))) {
      try {
        rmdirSync(dir)
      } catch (err) {
        problems.push(`rmdir ${dir}: ${(err as Error).message}`)
      }
    }
  }
  return problems
}

/**
 * Removes what the recorded cluster left: its processes (those it started,
 * the shims naming its folder, anything still in its cgroup), mounts under its
 * folder, its cgroups, the bridge, the iptables chains added since it started,
 * the kernel settings it changed, the hosts line if it added it, its folder,
 * and the record. Returns what could not be removed (empty when all went).
 */
export async function removeLeftovers(state: NodeState): Promise<string[]> {
  const deadline = Date.now() + 30_000
  const problems: string[] = []
  const attempt = async (what: string, step: () => Promise<string[] | unknown>): Promise<void> => {
    try {
      const found = await step()
      if (Array.isArray(found)) problems.push(...(found as string[]))
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`)
    }
  }
  await attempt('processes', () =>
    killAll(
      [...state.processes, ...processesNaming(state.dir), ...processesInCgroup(state.cgroup)],
      deadline,
    ),
  )
  await attempt('mounts', () => unmountAll(state.dir))
  await attempt('cgroups', async () => removeCgroups(state.cgroup))
  await attempt('bridge', () => deleteBridge())
  await attempt('iptables', async () => {
    await removeAddedChains(state.chainsBefore)
  })
  await attempt('kernel settings', async () => {
    restoreSysctls(state.sysctlsBefore)
  })
  if (state.hostsLineAdded) {
    await attempt('/etc/hosts', () =>
      removeHostsEntry({
        path: '/etc/hosts',
        isRoot: true,
        run: () => Promise.reject(new Error('runs as root: no sudo')),
      }),
    )
  }
  // Only once nothing is mounted there any more: rm would descend into a mount.
  for (const dir of [state.dir, ...(state.otherDirs ?? [])]) {
    if (mountsUnder(dir).length === 0) {
      await attempt('folder', () => rm(dir, { recursive: true, force: true }))
    } else {
      problems.push(`${dir} kept: still mounted at ${mountsUnder(dir).join(', ')}`)
    }
  }
  if (problems.length === 0) await rm(STATE_FILE, { force: true })
  return problems
}
