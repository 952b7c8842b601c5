import { createHash } from 'node:crypto'
import * as core from '@actions/core'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { formatDuration } from '../duration.js'
import { InputError, UserError } from '../errors.js'
import { FIELD_MANAGER, applyManifests, applyObject } from '../kube/apply.js'
import { apiMessage, statusOf, type Kube } from '../kube/client.js'
import { conditionOf, type KubeObject } from '../kube/objects.js'
import { withRetry } from '../kube/retry.js'
import { waitFor } from '../kube/wait.js'
import type { Plan } from '../plan.js'
import {
  fetchTektonRelease,
  type TektonComponent,
  type TektonRelease,
} from '../tools/tekton/release.js'
import type { SigningKey } from './signing.js'

export const PIPELINES_NAMESPACE = 'tekton-pipelines'
export const CHAINS_NAMESPACE = 'tekton-chains'
export const CHAINS_CONTROLLER = 'tekton-chains-controller'
export const CHAINS_CONFIG = 'chains-config'
export const SIGNING_SECRET = 'signing-secrets'
/** Field manager of the settings put into a Chains that was already running. */
const RECONFIGURE_MANAGER = `${FIELD_MANAGER}-reconfigure`

/** What the phase did with one component. */
export interface ComponentResult {
  component: TektonComponent
  version: string
  /** `installed` from the pinned release, or `kept`: a compatible one was already running. */
  action: 'installed' | 'kept'
  /** The release manifest applied (when installed). */
  release?: Pick<TektonRelease, 'url' | 'sha256' | 'verifiedBy'>
}

export interface TektonResult {
  pipelines: ComponentResult
  chains: ComponentResult
}

export interface TektonDeps {
  kube: Kube
  /** Epoch ms by which Tekton must admit Tasks. */
  deadline: number
  fetchRelease?: typeof fetchTektonRelease
}

type Deployment = KubeObject & {
  metadata: KubeObject['metadata'] & { generation?: number }
  spec?: { replicas?: number }
  status?: {
    observedGeneration?: number
    replicas?: number
    updatedReplicas?: number
    availableReplicas?: number
  }
}

/**
 * Chains' configuration for this run (DESIGN 3): every key that decides how
 * and where the run's artifacts are signed and stored, set explicitly, since
 * on an existing Chains any key left out keeps the cluster's value. slsa/v1
 * provenance for TaskRuns and PipelineRuns and a simple-signing `.sig`, all
 * signed with the x509 signer (the key in signing-secrets, Fulcio off) and
 * stored as DSSE envelopes next to the image in its own repository; no
 * transparency log; plain HTTP only when the registry is the embedded one.
 * Chains ignores keys it does not know (encoding-format is new in v0.29).
 */
export function chainsConfig(embeddedRegistry: boolean): Record<string, string> {
  return {
    'artifacts.taskrun.format': 'slsa/v1',
    'artifacts.taskrun.storage': 'oci',
    'artifacts.taskrun.signer': 'x509',
    'artifacts.pipelinerun.format': 'slsa/v1',
    'artifacts.pipelinerun.storage': 'oci',
    'artifacts.pipelinerun.signer': 'x509',
    'artifacts.pipelinerun.enable-deep-inspection': 'true',
    'artifacts.oci.format': 'simplesigning',
    'artifacts.oci.storage': 'oci',
    'artifacts.oci.signer': 'x509',
    'signers.x509.fulcio.enabled': 'false',
    // Empty: the image's own repository, where the Chains phase looks.
    'storage.oci.repository': '',
    'storage.oci.encoding-format': 'dsse',
    'transparency.enabled': 'false',
    ...(embeddedRegistry && { 'storage.oci.repository.insecure': 'true' }),
  }
}

/** The signing secret's data, as `cosign generate-key-pair k8s://...` writes it (raw bytes, base64 in `data`). */
export function signingSecretData(key: SigningKey): Record<string, string> {
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64')
  return {
    'cosign.key': b64(key.privateKeyPem),
    'cosign.pub': b64(key.publicKeyPem),
    'cosign.password': b64(key.password),
  }
}

/** Tekton's two installs, under way side by side. */
export interface TektonInstall {
  /** Pipelines installed (or a compatible one kept), once its webhook admits a Task. */
  pipelines: Promise<ComponentResult>
  /** Chains installed (or kept and reconfigured) with this run's config and key, its controller Available. */
  chains: Promise<ComponentResult>
  /**
   * No Chains ran on the cluster before: nothing but the Chains being
   * installed, which starts with this run's config and key, can sign what
   * runs. A PipelineRun may then start before `chains` settles (Chains
   * signs the runs that finished before it started). An earlier Chains may
   * sign with its old key until it is replaced: then the run waits.
   */
  chainsIsNew: boolean
}

/**
 * Makes Tekton Pipelines and Chains ready on the cluster: installs the pinned
 * releases (or keeps compatible ones already running), with Chains configured
 * and holding our key before its controller starts; waits until every
 * controller is Available and Tekton's webhook admits a Task.
 */
export async function installTekton(
  plan: Pick<Plan, 'tektonPipelinesVersion' | 'tektonChainsVersion' | 'embeddedRegistry'>,
  key: SigningKey,
  deps: TektonDeps,
): Promise<TektonResult> {
  const install = await startTektonInstall(plan, key, deps)
  const [pipelines, chains] = await Promise.all([install.pipelines, install.chains])
  return { pipelines, chains }
}

/**
 * Starts both installs once both releases are fetched and checked, and
 * returns without waiting for them: the flow starts training as soon as
 * Pipelines is ready, while a new Chains is still coming up.
 */
export async function startTektonInstall(
  plan: Pick<Plan, 'tektonPipelinesVersion' | 'tektonChainsVersion' | 'embeddedRegistry'>,
  key: SigningKey,
  deps: TektonDeps,
): Promise<TektonInstall> {
  const { kube, deadline } = deps
  const fetchRelease = deps.fetchRelease ?? fetchTektonRelease
  const asked = chainsSupport(plan.tektonChainsVersion, plan.embeddedRegistry)
  if (!asked.ok) {
    throw new InputError(
      'tekton-chains-version',
      `Tekton Chains ${plan.tektonChainsVersion} cannot sign this run's image: ${asked.reason}; accepted: ${CHAINS_ACCEPTED}`,
    )
  }
  const [pipelinesFound, chainsFound] = await Promise.all([
    installedVersion(kube, PIPELINES_NAMESPACE, 'pipelines-info'),
    installedVersion(kube, CHAINS_NAMESPACE, 'chains-info'),
  ])
  // The versions kept, when what is installed is compatible.
  const keptPipelines =
    pipelinesFound !== undefined && pipelinesCompatible(pipelinesFound) ? pipelinesFound : undefined
  const found =
    chainsFound === undefined ? undefined : chainsSupport(chainsFound, plan.embeddedRegistry)
  const keptChains = found?.ok ? chainsFound : undefined
  if (found && !found.ok) {
    core.info(
      `Tekton chains ${chainsFound} is installed but cannot sign this run's image (${found.reason}): installing ${plan.tektonChainsVersion} over it`,
    )
  }
  const warning = keptChains ? found?.ok && found.warning : asked.warning
  if (warning) core.warning(warning)
  const config = chainsConfig(plan.embeddedRegistry)
  const secret = signingSecretData(key)

  // Both releases are fetched, checked and given our settings before anything
  // is applied: a broken one stops the install with nothing half-applied.
  const [pipelinesRelease, chainsRelease] = await Promise.all([
    keptPipelines ? undefined : fetchRelease('pipeline', plan.tektonPipelinesVersion),
    keptChains ? undefined : fetchRelease('chains', plan.tektonChainsVersion),
  ])
  const chainsToApply = chainsRelease && withChainsSettings(chainsRelease, config, secret)
  const pipelinesToApply = pipelinesRelease && withPromptReadiness(pipelinesRelease)
  // Pipelines and Chains share no objects: both installs run at once.
  const pipelines = (async () => {
    const result = keptPipelines
      ? kept('pipeline', keptPipelines)
      : await install(kube, pipelinesToApply!, deadline)
    const admitting = Date.now()
    await waitUntilAdmitted(kube, deadline)
    core.info(`Tekton admits Tasks (waited ${formatDuration(Date.now() - admitting)})`)
    return result
  })()
  const chains = keptChains
    ? reconfigureChains(kube, keptChains, config, secret, deadline)
    : installChains(kube, chainsToApply!, secret, deadline)
  return { pipelines, chains, chainsIsNew: chainsFound === undefined }
}

async function installedVersion(
  kube: Kube,
  namespace: string,
  name: string,
): Promise<string | undefined> {
  try {
    const info = await kube.core.readNamespacedConfigMap({ name, namespace })
    return info.data?.version
  } catch (err) {
    if (statusOf(err) === 404) return undefined
    throw new UserError(`reading ${namespace}/${name} failed: ${apiMessage(err)}`)
  }
}

function versionParts(version: string): [number, number, number] | undefined {
  const match = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version)
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined
}

/** The bundled Task and Pipeline use tekton.dev/v1, served by every Pipelines v1.x. */
export function pipelinesCompatible(version: string): boolean {
  return versionParts(version)?.[0] === 1
}

/** The embedded registry's name, as pods and Chains reach it (DESIGN 3). */
const EMBEDDED_REGISTRY = 'registry.local:5000'

/** Which `tekton-chains-version` values the action installs, and which installed Chains it keeps. */
export const CHAINS_ACCEPTED = `v0.20.0 or later; with the embedded registry (${EMBEDDED_REGISTRY}) not v0.26.9`

/** Whether a Chains version can sign this run's image: yes, yes with a warning, or no and why. */
export type ChainsSupport = { ok: true; warning?: string } | { ok: false; reason: string }

/**
 * Read in tektoncd/chains. From v0.20.0 the controller watches the
 * tekton.dev/v1 runs Pipelines v1.x stores (DESIGN 3: Chains v0.2x). A
 * registry served over plain HTTP, as the embedded one is, must be reached
 * both where Chains stores the .sig/.att and where it reads the image it
 * signs; `storage.oci.repository.insecure` covers the image only from
 * v0.28.0, and v0.27.6 on 0.27. Before, go-containerregistry's own rule
 * decides, and up to its v0.21.5 that rule takes `*.local` hosts for plain
 * HTTP: v0.20.0–v0.26.8 and v0.27.0–v0.27.5 (go-containerregistry v0.18.0 to
 * v0.21.5) reach registry.local:5000 by that rule alone; v0.26.9 (v0.21.7,
 * which no longer has it) reaches it over HTTPS and fails.
 */
export function chainsSupport(version: string, embeddedRegistry: boolean): ChainsSupport {
  const parts = versionParts(version)
  if (!parts) return { ok: false, reason: 'it is not a release version (vX.Y.Z)' }
  const [major, minor, patch] = parts
  if (major === 0 && minor < 20) {
    return {
      ok: false,
      reason: 'it is older than v0.20.0, the first Chains that watches tekton.dev/v1 runs',
    }
  }
  if (!embeddedRegistry || major > 0 || minor > 27 || (minor === 27 && patch >= 6)) {
    return { ok: true }
  }
  if (minor === 26 && patch >= 9) {
    return {
      ok: false,
      reason:
        `it reads the image it signs over HTTPS from the embedded registry ${EMBEDDED_REGISTRY}, ` +
        'which serves plain HTTP (it applies storage.oci.repository.insecure only where it stores, ' +
        'and its go-containerregistry no longer takes *.local hosts for plain HTTP)',
    }
  }
  return {
    ok: true,
    warning:
      `Tekton Chains ${version} ignores storage.oci.repository.insecure for the image it signs: it ` +
      `reaches the embedded registry ${EMBEDDED_REGISTRY} only because the go-containerregistry it ` +
      'is built with takes *.local hosts for plain HTTP (v0.27.6 or later, and v0.28.0 or later, honour the setting)',
  }
}

function kept(component: TektonComponent, version: string): ComponentResult {
  core.info(`Tekton ${component} ${version} is already installed and compatible: keeping it`)
  return { component, version, action: 'kept' }
}

/** Puts our Chains config and key into the release's own (empty) objects, before anything is applied. */
function withChainsSettings(
  release: TektonRelease,
  config: Record<string, string>,
  secret: Record<string, string>,
): TektonRelease {
  const find = (kind: string, name: string) =>
    release.objects.find(
      (o) =>
        o.kind === kind && o.metadata.name === name && o.metadata.namespace === CHAINS_NAMESPACE,
    )
  const configMap = find('ConfigMap', CHAINS_CONFIG)
  const signing = find('Secret', SIGNING_SECRET)
  if (!configMap || !signing) {
    throw new UserError(
      `${release.url} has no ${!configMap ? `ConfigMap ${CHAINS_CONFIG}` : `Secret ${SIGNING_SECRET}`} in ${CHAINS_NAMESPACE}: is it a Tekton Chains release?`,
    )
  }
  const objects = release.objects.map((o) => {
    if (o === configMap) return { ...o, data: { ...(o.data as object | undefined), ...config } }
    // Not immutable: a later run must be able to put another key in.
    if (o === signing) return { ...o, data: secret, immutable: false }
    if (o.kind === 'Deployment' && o.metadata.name === CHAINS_CONTROLLER) {
      return withKeyAnnotation(o, secret)
    }
    return o
  })
  return { ...release, objects }
}

interface Probe {
  initialDelaySeconds?: number
  periodSeconds?: number
  failureThreshold?: number
}

/**
 * Pipelines' Deployments probe readiness 5 s after start, then every 10 s:
 * its webhook admits nothing (its Service has no endpoint) until a probe
 * passes, and each probe that comes before it serves costs 10 s more. Probed
 * from 1 s, every second instead; it still takes as long as before to be
 * marked unready (failureThreshold scaled by the same factor). Nothing else
 * of the release changes.
 */
export function withPromptReadiness(release: TektonRelease): TektonRelease {
  const prompt = (probe: Probe): Probe => {
    const period = probe.periodSeconds ?? 10
    if (period <= 1) return probe
    const unreadyAfter = period * (probe.failureThreshold ?? 3)
    return { ...probe, initialDelaySeconds: 1, periodSeconds: 1, failureThreshold: unreadyAfter }
  }
  const objects = release.objects.map((o) => {
    if (o.kind !== 'Deployment') return o
    const spec = (o.spec ?? {}) as {
      template?: { spec?: { containers?: { readinessProbe?: Probe }[] } }
    }
    const containers = spec.template?.spec?.containers
    if (!containers?.some((c) => c.readinessProbe)) return o
    return {
      ...o,
      spec: {
        ...spec,
        template: {
          ...spec.template,
          spec: {
            ...spec.template?.spec,
            containers: containers.map((c) =>
              c.readinessProbe ? { ...c, readinessProbe: prompt(c.readinessProbe) } : c,
            ),
          },
        },
      },
    }
  })
  return { ...release, objects }
}

/**
 * The controller's pod template names the key it must sign with (a hash of
 * the public key): installed over an earlier Chains with another key, the
 * Deployment changes and its pod is replaced, instead of signing with the old
 * key until the kubelet refreshes the mounted secret (a minute or more).
 */
function withKeyAnnotation(deployment: KubeObject, secret: Record<string, string>): KubeObject {
  const spec = (deployment.spec ?? {}) as { template?: { metadata?: { annotations?: object } } }
  const template = spec.template ?? {}
  const key = createHash('sha256')
    .update(secret['cosign.pub'] ?? '')
    .digest('hex')
    .slice(0, 16)
  return {
    ...deployment,
    spec: {
      ...spec,
      template: {
        ...template,
        metadata: {
          ...template.metadata,
          annotations: { ...template.metadata?.annotations, [`${FIELD_MANAGER}/signing-key`]: key },
        },
      },
    },
  }
}

async function install(
  kube: Kube,
  release: TektonRelease,
  deadline: number,
): Promise<ComponentResult> {
  core.info(
    `Tekton ${release.component} ${release.version}: applying ${release.url} (sha256 ${release.sha256}, ${release.verifiedBy})`,
  )
  const started = Date.now()
  await applyManifests(kube, release.objects, deadline)
  core.info(
    `Tekton ${release.component}: ${release.objects.length} objects applied in ${formatDuration(Date.now() - started)}`,
  )
  const deployments = release.objects.filter((o) => o.kind === 'Deployment')
  await Promise.all(
    deployments.map(async (d) => {
      const namespace = d.metadata.namespace ?? 'default'
      await waitUntilAvailable(kube, namespace, d.metadata.name, deadline)
      core.info(
        `Deployment ${namespace}/${d.metadata.name} Available after ${formatDuration(Date.now() - started)}`,
      )
    }),
  )
  const { url, sha256, verifiedBy } = release
  return {
    component: release.component,
    version: release.version,
    action: 'installed',
    release: { url, sha256, verifiedBy },
  }
}

/** Chains' signing secret holding exactly `secret`, before the release (and its controller) is applied. */
async function installChains(
  kube: Kube,
  release: TektonRelease,
  secret: Record<string, string>,
  deadline: number,
): Promise<ComponentResult> {
  // A Secret left by an earlier Chains keeps the keys others put there:
  // applying the release's would not remove them.
  await replaceSigningSecret(kube, secret, deadline)
  const result = await install(kube, release, deadline)
  // Installed over an earlier Chains: its controller pod, holding the earlier
  // key, must be gone before anything is signed.
  const controller = release.objects.find(
    (o) => o.kind === 'Deployment' && o.metadata.name === CHAINS_CONTROLLER,
  )
  if (controller) await waitUntilOnlyNewPods(kube, controller, deadline)
  return result
}

/**
 * Replaces the signing secret's data whole (a JSON patch of /data), so no key
 * another manager put there stays: Chains' x509 signer prefers an `x509.pem`
 * to our `cosign.key` (DESIGN 3). False when there is no such Secret.
 */
async function replaceSigningSecret(
  kube: Kube,
  secret: Record<string, string>,
  deadline: number,
): Promise<boolean> {
  const patch = [{ op: 'add', path: '/data', value: secret }]
  try {
    await withRetry(
      () =>
        kube.core.patchNamespacedSecret(
          {
            name: SIGNING_SECRET,
            namespace: CHAINS_NAMESPACE,
            body: patch,
            fieldManager: RECONFIGURE_MANAGER,
          },
          setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
        ),
      deadline,
      `replacing the data of Secret ${CHAINS_NAMESPACE}/${SIGNING_SECRET}`,
    )
    return true
  } catch (err) {
    if (statusOf(err) === 404) return false
    throw new UserError(
      `replacing the data of Secret ${CHAINS_NAMESPACE}/${SIGNING_SECRET} failed: ${apiMessage(err)}`,
    )
  }
}

/** chains-config's data as the cluster has it (none when there is no such ConfigMap). */
async function currentChainsConfig(kube: Kube): Promise<Record<string, string>> {
  try {
    const map = await kube.core.readNamespacedConfigMap({
      name: CHAINS_CONFIG,
      namespace: CHAINS_NAMESPACE,
    })
    return map.data ?? {}
  } catch (err) {
    if (statusOf(err) === 404) return {}
    throw new UserError(`reading ${CHAINS_NAMESPACE}/${CHAINS_CONFIG} failed: ${apiMessage(err)}`)
  }
}

/**
 * A compatible Chains is running: give it our config (saying which of its
 * values change) and only our key, then restart its controller (mounted
 * secrets reach a running pod only slowly) and wait for the new pod.
 */
async function reconfigureChains(
  kube: Kube,
  version: string,
  config: Record<string, string>,
  secret: Record<string, string>,
  deadline: number,
): Promise<ComponentResult> {
  core.info(
    `Tekton chains ${version} is already installed: configuring it and restarting its controller`,
  )
  const metadata = (name: string) => ({ name, namespace: CHAINS_NAMESPACE })
  // Partial objects, under a manager of their own: fields they leave out stay as they are.
  const apply = (object: KubeObject) => applyObject(kube, object, deadline, RECONFIGURE_MANAGER)
  const current = await currentChainsConfig(kube)
  for (const [name, value] of Object.entries(config)) {
    if (current[name] === value) continue
    const old = name in current ? JSON.stringify(current[name]) : '(unset)'
    core.info(`${CHAINS_CONFIG} ${name}: ${old} → ${JSON.stringify(value)}`)
  }
  await Promise.all([
    apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: metadata(CHAINS_CONFIG), data: config }),
    (async () => {
      // Gone from a running Chains: made anew, holding only our key.
      if (!(await replaceSigningSecret(kube, secret, deadline))) {
        await apply({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: metadata(SIGNING_SECRET),
          data: secret,
        })
      }
    })(),
  ])
  const restarted = await apply({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(CHAINS_CONTROLLER),
    spec: {
      template: {
        metadata: {
          annotations: { [`${FIELD_MANAGER}/restarted-at`]: new Date().toISOString() },
        },
      },
    },
  })
  await waitUntilAvailable(
    kube,
    CHAINS_NAMESPACE,
    CHAINS_CONTROLLER,
    deadline,
    restarted.metadata.generation as number | undefined,
  )
  await waitUntilOnlyNewPods(kube, restarted, deadline)
  return { component: 'chains', version, action: 'kept' }
}

interface PodOfDeployment {
  metadata?: {
    name?: string
    labels?: Record<string, string>
    deletionTimestamp?: unknown
    ownerReferences?: { kind?: string }[]
  }
}

/**
 * Waits until the pods a Deployment's rollout replaced are gone: an old
 * Chains controller still shutting down could otherwise sign with the
 * previous key. Done when no pod of its selector is terminating and they
 * all come from one template (one pod-template-hash).
 */
async function waitUntilOnlyNewPods(
  kube: Kube,
  deployment: KubeObject,
  deadline: number,
): Promise<void> {
  const spec = deployment.spec as { selector?: { matchLabels?: Record<string, string> } }
  const selector = Object.entries(spec.selector?.matchLabels ?? {})
  const namespace = deployment.metadata.namespace
  // A Deployment's pods are those its ReplicaSets own and its selector matches.
  const ours = (pod: PodOfDeployment) =>
    pod.metadata?.ownerReferences?.some((owner) => owner.kind === 'ReplicaSet') === true &&
    selector.every(([key, value]) => pod.metadata?.labels?.[key] === value)
  await waitFor<PodOfDeployment>(
    kube,
    { apiVersion: 'v1', kind: 'Pod', namespace },
    (pods) => {
      const own = pods.filter(ours)
      const templates = new Set(own.map((p) => p.metadata?.labels?.['pod-template-hash']))
      return own.every((p) => p.metadata?.deletionTimestamp === undefined) && templates.size <= 1
    },
    {
      deadline,
      what: `the pods replaced by the restart of Deployment ${namespace}/${deployment.metadata.name} to stop`,
      diagnose: async (pods) =>
        pods
          .filter(ours)
          .map(
            (p) =>
              `${p.metadata?.name}${p.metadata?.deletionTimestamp === undefined ? '' : ' (terminating)'}`,
          )
          .join(', ') || 'no pods',
    },
  )
}

/**
 * Waits until a Deployment has rolled out (the controller saw its latest
 * generation) and is Available. On timeout the error shows the pods' phases,
 * their containers' waiting reasons and recent events in the namespace.
 */
export async function waitUntilAvailable(
  kube: Kube,
  namespace: string,
  name: string,
  deadline: number,
  generation?: number,
): Promise<void> {
  await waitFor<Deployment>(
    kube,
    { apiVersion: 'apps/v1', kind: 'Deployment', namespace, name },
    ([d]) => {
      if (!d) return false
      const wanted = Math.max(generation ?? 0, d.metadata.generation ?? 0)
      const replicas = d.spec?.replicas ?? 1
      return (
        (d.status?.observedGeneration ?? 0) >= wanted &&
        (d.status?.updatedReplicas ?? 0) >= replicas &&
        conditionOf(d, 'Available')?.status === 'True'
      )
    },
    {
      deadline,
      what: `Deployment ${namespace}/${name} to be Available`,
      diagnose: ([d]) => describeDeployment(kube, namespace, d),
    },
  )
}

async function describeDeployment(
  kube: Kube,
  namespace: string,
  d: Deployment | undefined,
): Promise<string> {
  if (!d) return 'the Deployment does not exist'
  const available = conditionOf(d, 'Available')
  const facts = [
    `Available=${available?.status ?? 'unknown'}${available?.reason ? ` (${available.reason})` : ''}`,
  ]
  const [pods, events] = await Promise.all([
    kube.core.listNamespacedPod({ namespace }),
    kube.core.listNamespacedEvent({ namespace }),
  ])
  for (const pod of pods.items) {
    const waiting = (pod.status?.containerStatuses ?? [])
      .map((c) => c.state?.waiting)
      .filter((w) => w !== undefined)
      .map((w) => `${w.reason ?? 'waiting'}${w.message ? `: ${w.message}` : ''}`)
    facts.push(
      `pod ${pod.metadata?.name} ${pod.status?.phase ?? 'unknown'}${waiting.length ? ` (${waiting.join('; ')})` : ''}`,
    )
  }
  const recent = events.items
    .filter((e) => e.type === 'Warning' || e.reason === 'Failed' || e.reason === 'BackOff')
    .slice(-5)
    .map((e) => `event ${e.reason}: ${e.message ?? ''}`.trim())
  return [...facts, ...recent].join('; ')
}

/** A Task the webhook must admit: proof that admission works, not only that its pod is Ready. */
const ADMISSION_PROBE = {
  apiVersion: 'tekton.dev/v1',
  kind: 'Task',
  // generateName: never conflicts with a leftover object of the same name.
  metadata: { generateName: 'oml-chains-admission-probe-', namespace: 'default' },
  spec: { steps: [{ name: 'probe', image: 'busybox', script: 'true' }] },
}

/**
 * Server-side dry-run creates of a Task until Tekton's webhook admits one: a
 * Ready webhook pod can come before its admission works (DESIGN 3).
 */
async function waitUntilAdmitted(kube: Kube, deadline: number): Promise<void> {
  try {
    await withRetry(
      () => kube.objects.create(ADMISSION_PROBE, undefined, 'All', FIELD_MANAGER),
      deadline,
      'asking Tekton to admit a Task (dry run)',
    )
  } catch (err) {
    throw new UserError(
      `Tekton does not admit Tasks (server-side dry-run create of a Task in namespace default): ${apiMessage(err)}`,
    )
  }
}
