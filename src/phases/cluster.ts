/**
 * The cluster phase: a kind cluster with the embedded registry wired the way
 * DESIGN 3 lays out ("Registry reachable from pods, Chains and the runner
 * alike"), or a user's existing cluster, checked before anything is applied.
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import * as core from '@actions/core'
import { AuthorizationV1Api, VersionApi, type KubeConfig } from '@kubernetes/client-node'
import { errorMessage, UserError } from '../errors.js'
import { applyObject } from '../kube/apply.js'
import { apiMessage, connect, makeApi, statusOf, type Kube } from '../kube/client.js'
import type { ClusterPlan, Plan } from '../plan.js'
import { maskSecret } from '../secrets.js'
import { Docker, PORT_TAKEN, REGISTRY_IMAGE, type ContainerInfo } from '../tools/docker.js'
import { execRunner, type CommandRunner } from '../tools/exec.js'
import { Kind } from '../tools/kind/cluster.js'
import {
  KIND_NETWORK,
  kindClusterConfig,
  localRegistryHostingConfigMap,
  REGISTRY_CONTAINER,
  REGISTRY_HOST,
  REGISTRY_HOST_ADDRESS,
  REGISTRY_HOST_PORT,
  REGISTRY_PORT,
  registryHostsToml,
  registryHostsTomlPath,
} from '../tools/kind/config.js'
import { installKind } from '../tools/kind/install.js'
import { ensureHostsEntry, type HostsFile } from './hosts.js'

/** What this run created, so that cleanup removes exactly that and nothing it reused. */
export interface CreatedResources {
  /** Name of the kind cluster this run created. */
  cluster?: string
  /** The kind binary that created it (the post step deletes with the same one). */
  kindBinary?: string
  /** Name of the registry container this run started. */
  registryContainer?: string
  /** True when this run added `127.0.0.1 registry.local` to the hosts file. */
  hostsEntry?: boolean
  /** The tag this run put on the trainer image in the runner's Docker (trainer-image.ts). */
  trainerTag?: string
}

export interface PreparedCluster {
  mode: 'kind' | 'existing'
  /** Kubeconfig of the cluster (holds credentials: masked, never logged). */
  kubeconfig: string
  kube: Kube
  /** The API server's version, e.g. `v1.36.1`. */
  serverVersion: string
  created: CreatedResources
  /** Things found in place and used as they were, for the log and the summary. */
  reused: string[]
  /** Set when the embedded registry is up and answered from the runner and every node. */
  embeddedRegistry?: { host: string }
  /** Whether the credentials may create CRDs (installing Tekton needs it). */
  canInstallCrds: boolean
}

export interface ClusterDeps {
  /** Runs kind and docker. */
  run: CommandRunner
  installKind: (version: string) => Promise<string>
  hostsFile: HostsFile
  /** Where the kind config file is written (the runner's temp directory). */
  workDir: string
  /** Epoch ms by which the cluster must be ready. */
  deadline: number
  /** GETs a registry's /v2/ from the runner until it answers 200 or `deadline` passes. */
  probeRegistry: (url: string, deadline: number) => Promise<void>
  /**
   * Told everything created so far, each time something is about to be
   * created: if this phase fails half-way, the post step still knows what to remove.
   */
  record: (created: CreatedResources) => void
  mask: (secret: string) => void
  log: (line: string) => void
}

/** The deps of a real run; `workDir`, `deadline` and `record` come from run.ts. */
export function clusterDeps(
  given: Pick<ClusterDeps, 'workDir' | 'deadline' | 'record'> & Partial<ClusterDeps>,
): ClusterDeps {
  return {
    run: execRunner,
    installKind: (version) => installKind(version),
    hostsFile: {
      path: '/etc/hosts',
      isRoot: process.getuid?.() === 0,
      run: execRunner,
    },
    probeRegistry,
    mask: maskSecret,
    log: (line) => core.info(line),
    ...given,
  }
}

/** One API request may take this long before the server counts as not answering. */
const REQUEST_TIMEOUT_MS = 15_000
/** How long a cluster that exists is given to answer before it counts as broken. */
const REUSE_WAIT_MS = 30_000
/** How long the registry is given to answer once its container runs. */
const REGISTRY_WAIT_MS = 60_000

export async function prepareCluster(
  plan: Pick<Plan, 'cluster' | 'embeddedRegistry' | 'runsEmbeddedRegistry'>,
  deps: ClusterDeps,
): Promise<PreparedCluster> {
  if (plan.cluster.mode === 'existing') {
    const prepared = await prepareExisting(plan.cluster, deps)
    if (plan.embeddedRegistry) {
      prepared.embeddedRegistry = await checkRegistryOfExisting(deps)
    }
    return prepared
  }
  return prepareKind(plan.cluster, plan.runsEmbeddedRegistry, deps)
}

async function prepareExisting(
  cluster: Extract<ClusterPlan, { mode: 'existing' }>,
  deps: ClusterDeps,
): Promise<PreparedCluster> {
  const kube = connect(cluster.kubeconfig, cluster.kubeconfigSource)
  maskCredentials(kube.config, deps.mask)
  const where = describeKubeconfig(kube, cluster.kubeconfigSource)
  // One try: a user's cluster that does not answer now is a configuration problem.
  const serverVersion = await getServerVersion(kube).catch((err: unknown) => {
    throw apiError(kube, where, err)
  })
  const canInstallCrds = await checkAccess(kube, where)
  deps.log(
    `existing cluster ${kube.server} (Kubernetes ${serverVersion}), ${where}${canInstallCrds ? '' : '; these credentials cannot create CRDs'}`,
  )
  return {
    mode: 'existing',
    kubeconfig: cluster.kubeconfig,
    kube,
    serverVersion,
    created: {},
    reused: [`existing cluster ${kube.server}`],
    canInstallCrds,
  }
}

async function prepareKind(
  cluster: Extract<ClusterPlan, { mode: 'kind' }>,
  embeddedRegistry: boolean,
  deps: ClusterDeps,
): Promise<PreparedCluster> {
  const created: CreatedResources = {}
  const willCreate = (change: CreatedResources): void => {
    Object.assign(created, change)
    deps.record({ ...created })
  }
  const reused: string[] = []
  const { name } = cluster

  const kindBinary = await deps.installKind(cluster.kindVersion)
  const kind = new Kind(kindBinary, deps.run)
  const docker = new Docker(deps.run)

  const exists = (await kind.clusters()).includes(name)
  if (!exists) {
    const configPath = path.join(deps.workDir, `kind-${name}.yaml`)
    await writeFile(configPath, kindClusterConfig({ name, nodeImage: cluster.nodeImage }))
    deps.log(`creating kind cluster ${name} with ${cluster.nodeImage} (config ${configPath})`)
    // Recorded first: a run cancelled during creation still leaves node containers behind.
    willCreate({ cluster: name, kindBinary })
    await kind.createCluster(name, configPath, deps.deadline)
  }
  const kubeconfig = await kind.kubeconfig(name)
  const kube = connect(kubeconfig, `the kubeconfig of kind cluster ${name}`)
  maskCredentials(kube.config, deps.mask)
  const where = `kind cluster ${name}`
  let serverVersion: string
  if (exists) {
    try {
      serverVersion = await waitForApi(kube, Math.min(deps.deadline, Date.now() + REUSE_WAIT_MS))
    } catch (err) {
      throw new UserError(
        `kind cluster ${name} exists but ${apiError(kube, where, err).message}; delete it (kind delete cluster --name ${name}) or set cluster-name to another name`,
      )
    }
    reused.push(`kind cluster ${name}`)
    deps.log(`reusing kind cluster ${name} (Kubernetes ${serverVersion}) at ${kube.server}`)
    if (serverVersion !== cluster.kubernetesVersion) {
      deps.log(
        `note: kind cluster ${name} runs Kubernetes ${serverVersion}, not ${cluster.kubernetesVersion}; delete it to get ${cluster.kubernetesVersion}`,
      )
    }
  } else {
    serverVersion = await waitForApi(kube, deps.deadline).catch((err: unknown) => {
      throw apiError(kube, where, err)
    })
    deps.log(`kind cluster ${name} is up (Kubernetes ${serverVersion}) at ${kube.server}`)
  }

  const prepared: PreparedCluster = {
    mode: 'kind',
    kubeconfig,
    kube,
    serverVersion,
    created,
    reused,
    canInstallCrds: true, // kind's kubeconfig is the cluster admin's
  }
  if (!embeddedRegistry) return prepared

  const nodes = await kind.nodes(name)
  if (nodes.length === 0) throw new UserError(`kind cluster ${name} has no nodes`)
  const network = await nodeNetwork(docker, nodes[0]!)
  await startRegistry(docker, network, reused, willCreate, deps)
  // containerd reads certs.d at each pull: no restart needed after writing.
  await Promise.all(
    nodes.map((node) => docker.writeFile(node, registryHostsTomlPath(), registryHostsToml())),
  )
  deps.log(`wrote ${registryHostsTomlPath()} on ${nodes.join(', ')}`)

  if (await ensureHostsEntry(deps.hostsFile, () => willCreate({ hostsEntry: true }))) {
    deps.log(`added "${REGISTRY_HOST_ADDRESS} ${REGISTRY_HOST}" to ${deps.hostsFile.path}`)
  }

  await applyObject(kube, localRegistryHostingConfigMap(), deps.deadline)

  // The runner and every node must reach the registry under its one name.
  // Pods are checked by the pipeline phase, which is the first to run one.
  const url = `http://${REGISTRY_HOST_PORT}/v2/`
  await deps.probeRegistry(url, Math.min(deps.deadline, Date.now() + REGISTRY_WAIT_MS))
  await Promise.all(nodes.map((node) => checkFromNode(docker, node, url, deps.deadline, deps.log)))
  deps.log(`registry ${REGISTRY_HOST_PORT} answers from the runner and from ${nodes.join(', ')}`)
  prepared.embeddedRegistry = { host: REGISTRY_HOST_PORT }
  return prepared
}

/**
 * With cluster: existing, `image` in registry.local:5000 names a registry the
 * action does not start (a kind cluster kept by an earlier run has one): it
 * must answer from the runner already. Pods are checked before the pipeline.
 */
async function checkRegistryOfExisting(deps: ClusterDeps): Promise<{ host: string }> {
  const url = `http://${REGISTRY_HOST_PORT}/v2/`
  try {
    await deps.probeRegistry(url, Math.min(deps.deadline, Date.now() + REUSE_WAIT_MS))
  } catch (err) {
    throw new UserError(
      `image: ${REGISTRY_HOST_PORT} does not answer (${errorMessage(err)}); with cluster: existing the action starts no registry: one must already run there, reachable as ${REGISTRY_HOST_PORT} from the runner, the nodes and the pods (as next to a kind cluster kept by an earlier run), or give an image in a registry the cluster reaches`,
    )
  }
  deps.log(`registry ${REGISTRY_HOST_PORT} answers from the runner`)
  return { host: REGISTRY_HOST_PORT }
}

/**
 * The Docker network the node is on: `kind`, unless kind was told another
 * (KIND_EXPERIMENTAL_DOCKER_NETWORK). The registry joins the nodes there.
 */
async function nodeNetwork(docker: Docker, node: string): Promise<string> {
  const networks = Object.keys((await docker.inspectContainer(node))?.networks ?? {})
  if (networks.includes(KIND_NETWORK)) return KIND_NETWORK
  if (networks.length === 0) throw new UserError(`kind node ${node} is on no Docker network`)
  return networks[0]!
}

/** Starts the registry container, or reuses a running one, and puts it on the nodes' network as registry.local. */
async function startRegistry(
  docker: Docker,
  network: string,
  reused: string[],
  willCreate: (change: CreatedResources) => void,
  deps: ClusterDeps,
): Promise<void> {
  let info = await docker.inspectContainer(REGISTRY_CONTAINER)
  if (!info) {
    willCreate({ registryContainer: REGISTRY_CONTAINER })
    await portTakenNamed(
      docker.runRegistry({
        name: REGISTRY_CONTAINER,
        image: REGISTRY_IMAGE,
        hostAddress: REGISTRY_HOST_ADDRESS,
        hostPort: REGISTRY_PORT,
      }),
    )
    deps.log(`started registry container ${REGISTRY_CONTAINER} (${REGISTRY_IMAGE})`)
  } else {
    checkReusedRegistry(info, deps.log)
    if (!info.running) await portTakenNamed(docker.startContainer(REGISTRY_CONTAINER))
    reused.push(`registry container ${REGISTRY_CONTAINER}`)
    deps.log(`reusing registry container ${REGISTRY_CONTAINER} (${info.image}, was ${info.status})`)
  }
  info = await docker.inspectContainer(REGISTRY_CONTAINER)
  const attached = info?.networks[network]
  if (attached?.aliases.includes(REGISTRY_HOST)) return
  // On the network without the alias (attached by hand, say): attach again with it.
  if (attached) await docker.disconnectNetwork(network, REGISTRY_CONTAINER)
  await docker.connectNetwork(network, REGISTRY_CONTAINER, REGISTRY_HOST)
}

/** Starting the registry's container when its port is taken: one error, whether it is new or reused. */
async function portTakenNamed(starting: Promise<void>): Promise<void> {
  try {
    await starting
  } catch (err) {
    if (PORT_TAKEN.test(errorMessage(err))) {
      throw new UserError(
        `${REGISTRY_HOST_ADDRESS}:${REGISTRY_PORT} is taken by another program or container, and the embedded registry needs it: ${errorMessage(err)}`,
      )
    }
    throw err
  }
}

/**
 * A container named like the registry (a kept run's, or someone's) is used
 * only if it is a registry published where the action reaches it. Another
 * version of the registry image is fine: they serve the same API.
 */
function checkReusedRegistry(info: ContainerInfo, log: (line: string) => void): void {
  const remove = `remove it (docker rm -f ${REGISTRY_CONTAINER}) and the action starts its own`
  const repository = info.image.split('@')[0]!.replace(/:[^/:]*$/, '')
  if (repository.split('/').pop() !== 'registry') {
    throw new UserError(
      `container ${REGISTRY_CONTAINER} runs ${info.image || 'an unknown image'}, not a registry (the action starts ${REGISTRY_IMAGE}): ${remove}`,
    )
  }
  const bindings = info.ports[`${REGISTRY_PORT}/tcp`] ?? []
  const reachable = bindings.some(
    (b) => b.hostPort === String(REGISTRY_PORT) && ['127.0.0.1', '0.0.0.0', ''].includes(b.hostIp),
  )
  if (!reachable) {
    const published = bindings.map((b) => `${b.hostIp || '0.0.0.0'}:${b.hostPort}`).join(', ')
    throw new UserError(
      `registry container ${REGISTRY_CONTAINER} ${published ? `publishes port ${REGISTRY_PORT} on ${published}` : `does not publish port ${REGISTRY_PORT}`}, and the action reaches it at ${REGISTRY_HOST_ADDRESS}:${REGISTRY_PORT}: ${remove}`,
    )
  }
  if (info.image !== REGISTRY_IMAGE) {
    log(`note: registry container ${REGISTRY_CONTAINER} runs ${info.image}, not ${REGISTRY_IMAGE}`)
  }
}

/** GET the registry from inside a node (kind node images ship curl). A few tries: DNS may lag the network attach. */
async function checkFromNode(
  docker: Docker,
  node: string,
  url: string,
  deadline: number,
  log: (line: string) => void,
): Promise<void> {
  for (let attempt = 1, pause = 250; ; attempt++, pause *= 2) {
    const result = await docker.exec(node, [
      'curl',
      '--fail',
      '--silent',
      '--show-error',
      '--max-time',
      '5',
      '--output',
      '/dev/null',
      url,
    ])
    if (result.exitCode === 0) return
    const last = result.stderr.trim() || `curl exited ${result.exitCode}`
    if (attempt >= 5 || Date.now() + pause > deadline) {
      throw new UserError(`node ${node} cannot reach the registry at ${url}: ${last}`)
    }
    log(
      `node ${node} cannot reach the registry at ${url} yet (${last}); try ${attempt + 1} of 5 in ${pause / 1000} s`,
    )
    await delay(pause)
  }
}

/**
 * GETs `url` until it answers 200 or `deadline` passes; the default
 * `probeRegistry`. Says in the log why it tries again, when the reason is new.
 */
export async function probeRegistry(
  url: string,
  deadline: number,
  log: (line: string) => void = (line) => core.info(line),
): Promise<void> {
  let said = ''
  for (let pause = 100; ; pause = Math.min(pause * 2, 2_000)) {
    let last: string
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000), redirect: 'manual' })
      await res.body?.cancel()
      if (res.status === 200) return
      last = `HTTP ${res.status}`
    } catch (err) {
      last = causeOf(err)
    }
    if (Date.now() + pause > deadline) {
      throw new UserError(`the registry at ${url} does not answer from the runner: ${last}`)
    }
    if (last !== said)
      log(`the registry at ${url} does not answer yet (${(said = last)}); trying again`)
    await delay(pause)
  }
}

/** GET /version, given REQUEST_TIMEOUT_MS to answer. */
async function getServerVersion(kube: Kube): Promise<string> {
  const api = makeApi(kube.config, VersionApi)
  const info = await withTimeout(api.getCode(), REQUEST_TIMEOUT_MS)
  return info.gitVersion
}

/** GET /version until it answers; bad credentials fail at once. Says why it tries again, when the reason is new. */
async function waitForApi(kube: Kube, deadline: number): Promise<string> {
  let said = ''
  for (let pause = 200; ; pause = Math.min(pause * 2, 2_000)) {
    try {
      return await getServerVersion(kube)
    } catch (err) {
      const status = statusOf(err)
      if (status === 401 || status === 403 || Date.now() + pause > deadline) throw err
      const reason = apiMessage(err)
      if (reason !== said)
        core.info(
          `the API server ${kube.server} does not answer yet (${(said = reason)}); trying again`,
        )
    }
    await delay(pause)
  }
}

/**
 * Proves the credentials name a user (a SelfSubjectAccessReview needs an
 * authenticated one; GET /version does not) and asks whether they may create
 * CRDs, which installing Tekton needs.
 */
async function checkAccess(kube: Kube, where: string): Promise<boolean> {
  const api = makeApi(kube.config, AuthorizationV1Api)
  try {
    const review = await withTimeout(
      api.createSelfSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: {
            resourceAttributes: {
              verb: 'create',
              group: 'apiextensions.k8s.io',
              resource: 'customresourcedefinitions',
            },
          },
        },
      }),
      REQUEST_TIMEOUT_MS,
    )
    return review.status?.allowed === true
  } catch (err) {
    throw apiError(kube, where, err)
  }
}

class RequestTimeout extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RequestTimeout(`no answer in ${ms / 1000} s`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** "user U, context C in SOURCE", for messages. */
function describeKubeconfig(kube: Kube, source: string): string {
  const user = kube.config.getCurrentUser()?.name ?? '(none)'
  return `user ${user}, context ${kube.config.getCurrentContext()} in ${source}`
}

/** One line saying what went wrong talking to the API server, and with which kubeconfig. */
function apiError(kube: Kube, where: string, err: unknown): UserError {
  const status = statusOf(err)
  if (status === 401 || status === 403) {
    return new UserError(
      `the Kubernetes API server ${kube.server} rejected the credentials (${where}): ${apiMessage(err)}`,
    )
  }
  if (status !== undefined) {
    return new UserError(
      `the Kubernetes API server ${kube.server} answered with an error (${where}): ${apiMessage(err)}`,
    )
  }
  return new UserError(
    `cannot reach the Kubernetes API server ${kube.server} (${where}): ${causeOf(err)}`,
  )
}

/** The most specific reason of a network error: undici hides it in `cause`. */
function causeOf(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code
    return code && !cause.message.includes(code) ? `${cause.message} (${code})` : cause.message
  }
  return errorMessage(err)
}

/** Registers every credential in the kubeconfig with the log masker. */
function maskCredentials(config: KubeConfig, mask: (secret: string) => void): void {
  for (const user of config.getUsers()) {
    for (const value of [user.keyData, user.token, user.password]) if (value) mask(value)
  }
}
