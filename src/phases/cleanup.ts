/**
 * The post step's phase: removes what the main step created (the kind
 * cluster, the registry container, the hosts line, the trainer image's tag in
 * the runner's Docker) and nothing it reused.
 * It never fails: every problem becomes a warning, so a cleanup hiccup cannot
 * turn a good run red.
 */
import * as core from '@actions/core'
import { errorMessage } from '../errors.js'
import { Docker } from '../tools/docker.js'
import { execRunner, type CommandRunner } from '../tools/exec.js'
import { Kind } from '../tools/kind/cluster.js'
import { REGISTRY_HOST_ADDRESS, REGISTRY_PORT } from '../tools/kind/config.js'
import type { CreatedResources } from './cluster.js'
import { HOSTS_LINE, removeHostsEntry, type HostsFile } from './hosts.js'

export interface CleanupOptions {
  /** Leave everything running (the `keep-cluster` input). */
  keepCluster: boolean
}

export interface CleanupDeps {
  run: CommandRunner
  hostsFile: HostsFile
  log: (line: string) => void
}

export interface CleanupResult {
  /** What was removed. */
  removed: string[]
  /** What keep-cluster left running, with how to reach it. */
  kept: string[]
  /** Everything that went wrong; for core.warning, never a failure. */
  warnings: string[]
}

export function cleanupDeps(given: Partial<CleanupDeps> = {}): CleanupDeps {
  return {
    run: execRunner,
    hostsFile: { path: '/etc/hosts', isRoot: process.getuid?.() === 0, run: execRunner },
    log: (line) => core.info(line),
    ...given,
  }
}

export async function cleanup(
  created: CreatedResources,
  options: CleanupOptions,
  deps: CleanupDeps,
): Promise<CleanupResult> {
  const result: CleanupResult = { removed: [], kept: [], warnings: [] }
  const { cluster, registryContainer, hostsEntry, trainerTag } = created

  if (options.keepCluster) {
    if (cluster) result.kept.push(`kind cluster ${cluster} (kubectl context kind-${cluster})`)
    if (registryContainer) {
      result.kept.push(
        `registry container ${registryContainer} on ${REGISTRY_HOST_ADDRESS}:${REGISTRY_PORT}`,
      )
    }
    if (hostsEntry) result.kept.push(`"${HOSTS_LINE}" in ${deps.hostsFile.path}`)
    if (trainerTag) result.kept.push(`trainer image ${trainerTag} in the runner's Docker`)
    deps.log(
      result.kept.length > 0
        ? `keep-cluster: left running ${result.kept.join('; ')}`
        : 'keep-cluster: this run created nothing to keep',
    )
    return result
  }

  // Independent of each other: one failing does not stop the others.
  const attempt = async (what: string, work: () => Promise<boolean>): Promise<void> => {
    try {
      if (await work()) result.removed.push(what)
      else deps.log(`${what} was already gone`)
    } catch (err) {
      result.warnings.push(`could not remove ${what}: ${errorMessage(err)}`)
    }
  }

  if (cluster) {
    // The binary that created it; `kind` on PATH if the record predates it.
    const kind = new Kind(created.kindBinary ?? 'kind', deps.run)
    await attempt(`kind cluster ${cluster}`, async () => {
      await kind.deleteCluster(cluster)
      return true
    })
  }
  if (registryContainer) {
    await attempt(`registry container ${registryContainer}`, () =>
      new Docker(deps.run).removeContainer(registryContainer),
    )
  }
  if (hostsEntry) {
    await attempt(`"${HOSTS_LINE}" from ${deps.hostsFile.path}`, () =>
      removeHostsEntry(deps.hostsFile),
    )
  }
  if (trainerTag) {
    await attempt(`trainer image ${trainerTag}`, () => new Docker(deps.run).removeImage(trainerTag))
  }

  deps.log(
    result.removed.length > 0
      ? `removed ${result.removed.join('; ')}`
      : 'nothing to remove: this run created no cluster, registry or hosts entry',
  )
  return result
}

/**
 * What `created` leaves behind when no cleanup runs, each with the command
 * that removes it by hand: for a run stopped before it could clean up.
 */
export function leftBehind(created: CreatedResources, hostsPath = '/etc/hosts'): string[] {
  const left: string[] = []
  const { cluster, registryContainer, hostsEntry, trainerTag } = created
  if (cluster) left.push(`kind cluster ${cluster} (kind delete cluster --name ${cluster})`)
  if (registryContainer) {
    left.push(`registry container ${registryContainer} (docker rm -f ${registryContainer})`)
  }
  if (hostsEntry) left.push(`"${HOSTS_LINE}" in ${hostsPath} (delete that line)`)
  if (trainerTag) left.push(`trainer image ${trainerTag} (docker rmi ${trainerTag})`)
  return left
}
