/**
 * Stand-in for the Tekton Chains controller (modelled on v0.29.2), which needs
 * a container. It watches TaskRuns and PipelineRuns (tekton.dev/v1) and does
 * what Chains does with a finished one that has no `chains.tekton.dev/signed`:
 *
 * - reads `tekton-chains/chains-config` and the key in `tekton-chains/signing-secrets`
 *   (cosign.key, cosign.password) through the API at every signing, as Chains
 *   reads its mounted key files on every signing;
 * - for a TaskRun: builds the slsa/v1 provenance (in-toto Statement v0.1, SLSA
 *   v0.2 predicate: builder, buildType `tekton.dev/v1/TaskRun`, invocation,
 *   buildConfig.steps, metadata, materials from step images and
 *   `*ARTIFACT_INPUTS` results) and attests it with real `cosign attest --type
 *   slsaprovenance` to every image its `*IMAGE_URL`/`*IMAGE_DIGEST` and
 *   `IMAGES` results name, then signs each image with real `cosign sign` (the
 *   `.sig`, Chains' "oci" artifact);
 * - for a PipelineRun, once each of its TaskRuns is signed or failed (Chains
 *   waits for them too): the PipelineRun provenance (`buildConfig.tasks[]`
 *   with each task's steps, invocation and results; subjects and materials
 *   from the run's results and, with deep inspection, its TaskRuns'), attested
 *   the same way; PipelineRuns get no `.sig`;
 * - then sets `chains.tekton.dev/signed: "true"` with a server-side apply patch
 *   of its own annotations (field manager `tekton-chains-controller`), or
 *   counts `chains.tekton.dev/retries` up to 3 and then sets `"failed"`;
 * - with a `kubelet` stand-in: keeps a controller Pod record
 *   `tekton-chains-controller-<x>` in `tekton-chains` (label
 *   `app=tekton-chains-controller`) whose log holds Chains-shaped JSON (zap)
 *   lines naming each run, readable through the real API server.
 *
 * Like released Chains, a signer that cannot be loaded (no cosign.key, a wrong
 * password) is logged and skipped, and the run is still marked signed with
 * nothing pushed: the known bug the action checks for.
 *
 * What it does not play: formats other than slsa/v1 (`in-toto` is the same
 * payloader in v0.29), storage other than oci, the x509.pem key, KMS and
 * Fulcio signers, transparency (Rekor), `storage.oci.repository`, the
 * sigstore-bundle encoding and `*ARTIFACT_URI`/`*ARTIFACT_OUTPUTS` subjects:
 * such a config marks the run failed with a log line saying so. What cosign
 * writes differs from Chains in small ways: the DSSE keyid is empty (Chains
 * puts the key's SSH SHA256 fingerprint), the `.att` layer carries a
 * `predicateType` annotation, each attestation names only the image it is
 * attached to (Chains lists every subject of the run), and cosign re-encodes
 * the predicate through its SLSA v0.2 struct (field order; unknown fields dropped).
 * Where the Tekton stand-in leaves out what Tekton writes (`status.taskSpec`,
 * `status.pipelineSpec`, step `imageID`), the Task, the Pipeline and the
 * Pod's image stand for them.
 *
 * `mode` reproduces failures: `signed-without-signing` (the bug, whatever the
 * key), `fail` (every attempt fails: retries, then `"failed"`, with error lines),
 * `never` (the run is left alone). A run keeps the mode it was first seen with.
 */
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node'
import { randomBytes, randomUUID } from 'node:crypto'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { openPrivateKey } from '../../../src/cosign/keys.js'
import {
  CHAINS_ANNOTATION_PREFIX,
  CHAINS_CONTROLLER_CONTAINER,
  CHAINS_CONTROLLER_LABEL,
  CHAINS_FIELD_MANAGER,
  CHAINS_MAX_RETRIES,
  CHAINS_REPRODUCIBLE,
  CHAINS_RETRIES,
  CHAINS_SIGNED,
  signedValue,
} from '../../../src/kube/chains-annotations.js'
import { apiMessage, connect, statusOf, type Kube } from '../../../src/kube/client.js'
import type { KubeObject } from '../../../src/kube/objects.js'
import { withRetry } from '../../../src/kube/retry.js'
import { runCosign } from '../cosign.js'
import type { KubeletStandIn } from './kubelet.js'
import { watchAll } from './watch.js'

const TEKTON = 'tekton.dev/v1'
const CHAINS_NAMESPACE = 'tekton-chains'
const CHAINS_CONFIG = 'chains-config'
const SIGNING_SECRET = 'signing-secrets'
const DEFAULT_BUILDER_ID = 'https://tekton.dev/chains/v2'
const mergePatchHeader = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
/** The image of the release's controller, for the Pod record. */
const CONTROLLER_IMAGE =
  'ghcr.io/tektoncd/chains/controller-92006fd957c0afd31de6a40b3e33b39f:v0.29.2'

export type ChainsMode = 'sign' | 'signed-without-signing' | 'fail' | 'never'

export interface RunKey {
  kind: 'TaskRun' | 'PipelineRun'
  namespace: string
  name: string
}

export interface ChainsStandInOptions {
  /** Where the controller's log lines are served from (a Pod record on its Node). */
  kubelet?: KubeletStandIn
  /** How runs are handled (default `sign`); a function is asked once per run. */
  mode?: ChainsMode | ((run: RunKey) => ChainsMode)
  /** The stand-in's own problems (not the controller's log). */
  log?: (message: string) => void
}

export interface ChainsStandIn {
  /** The controller Pod record, when a kubelet was given. */
  podName: string | undefined
  /** The controller's log lines so far (JSON). */
  lines(): string[]
  stop(): Promise<void>
}

// --- Tekton and Chains shapes ------------------------------------------------

interface Param {
  name: string
  value?: unknown
  default?: unknown
}
interface StepSpec {
  name: string
  image?: string
  script?: string
  command?: string[]
  args?: string[]
}
interface TaskSpec {
  params?: Param[]
  steps: StepSpec[]
}
interface PipelineTask {
  name: string
  taskRef?: Record<string, unknown> & { name?: string }
  taskSpec?: TaskSpec
  params?: Param[]
  runAfter?: string[]
  when?: unknown[]
}
interface PipelineSpec {
  params?: Param[]
  tasks: PipelineTask[]
  finally?: PipelineTask[]
}
interface RunResult {
  name: string
  type?: string
  value: unknown
}
interface StepState {
  name: string
  container?: string
  imageID?: string
}
type Run = KubeObject & {
  metadata: KubeObject['metadata'] & {
    namespace: string
    uid?: string
    annotations?: Record<string, string>
  }
  spec: {
    params?: Param[]
    taskRef?: { name?: string }
    taskSpec?: TaskSpec
    pipelineRef?: { name?: string }
    pipelineSpec?: PipelineSpec
    taskRunTemplate?: { serviceAccountName?: string }
  }
  status?: {
    conditions?: { type: string; status: string }[]
    startTime?: string
    completionTime?: string
    results?: RunResult[]
    steps?: StepState[]
    podName?: string
    taskSpec?: TaskSpec
    pipelineSpec?: PipelineSpec
    childReferences?: { name: string; kind?: string; pipelineTaskName?: string }[]
  }
}

/** `{sha256: hex}` and the like. */
type DigestSet = Record<string, string>
interface Material {
  uri: string
  digest: DigestSet
}
interface Subject {
  name: string
  digest: DigestSet
}
interface StepAttestation {
  entryPoint: string
  arguments: string[] | null
  environment: { image: string; container: string }
  annotations: null
}
interface Invocation {
  configSource: Record<string, never>
  parameters: Record<string, unknown>
  environment?: { annotations?: Record<string, string>; labels?: Record<string, string> }
}
interface TaskAttestation {
  name: string
  after?: string[]
  ref: Record<string, unknown>
  startedOn: string
  finishedOn: string
  serviceAccountName?: string
  status: string
  steps?: StepAttestation[]
  invocation: Invocation
  results?: RunResult[]
}
/** The SLSA v0.2 predicate of Chains' slsa/v1 format, fields in Chains' order. */
interface Predicate {
  builder: { id: string }
  buildType: string
  invocation: Invocation
  buildConfig: { steps: StepAttestation[] } | { tasks: TaskAttestation[] }
  metadata: {
    buildStartedOn?: string
    buildFinishedOn?: string
    completeness: { parameters: boolean; environment: boolean; materials: boolean }
    reproducible: boolean
  }
  materials: Material[]
}

/** One signable type of Chains' config (artifacts.taskrun / pipelinerun / oci). */
interface ArtifactConfig {
  format: string
  storage: Set<string>
  signer: string
}
interface ChainsConfig {
  taskrun: ArtifactConfig
  pipelinerun: ArtifactConfig & { deepInspection: boolean }
  oci: ArtifactConfig
  builderId: string
  insecure: boolean
}

/** A config the stand-in does not play: the run is marked failed, with this reason logged. */
class Unsupported extends Error {}

// --- the controller ----------------------------------------------------------

export async function startChainsStandIn(
  kubeconfig: string,
  options: ChainsStandInOptions = {},
): Promise<ChainsStandIn> {
  const kube = connect(kubeconfig, 'chains stand-in kubeconfig')
  const problem = options.log ?? ((message) => console.error(`chains stand-in: ${message}`))
  const lines: string[] = []
  const podName = options.kubelet ? await startControllerPod(kube, options.kubelet) : undefined
  const write = (line: string) => {
    lines.push(line)
    if (podName) {
      options.kubelet!.write(CHAINS_NAMESPACE, podName, CHAINS_CONTROLLER_CONTAINER, `${line}\n`)
    }
  }
  const modes = new Map<string, ChainsMode>()
  const modeOf = (run: Run, key: RunKey): ChainsMode => {
    const id = run.metadata.uid ?? `${key.kind}/${key.namespace}/${key.name}`
    let mode = modes.get(id)
    if (!mode) {
      mode = typeof options.mode === 'function' ? options.mode(key) : (options.mode ?? 'sign')
      modes.set(id, mode)
    }
    return mode
  }

  let stopped = false
  const queue = new RunQueue(
    (key) => reconcile({ kube, write, modeOf, isStopped: () => stopped }, key),
    (key, err) => problem(`${key.kind} ${key.namespace}/${key.name}: ${apiMessage(err)}`),
  )
  const onChange = (kind: RunKey['kind']) => (type: string, run: Run) => {
    if (type === 'delete' || stopped) return
    const namespace = run.metadata.namespace
    queue.add({ kind, namespace, name: run.metadata.name })
    // Chains tracks a PipelineRun's TaskRuns: one done with signing wakes the PipelineRun.
    const owner = run.metadata.labels?.['tekton.dev/pipelineRun']
    if (kind === 'TaskRun' && owner && signedValue(run)) {
      queue.add({ kind: 'PipelineRun', namespace, name: owner })
    }
  }
  const watchError = (kind: string) => (err: unknown) =>
    problem(`watch of ${kind}s failed (started again): ${errorText(err)}`)
  // Each watch is retried on its own (a CRD applied just before answers 429
  // "storage is (re)initializing" for a moment); one that never starts stops the other.
  const started = await Promise.allSettled(
    (['TaskRun', 'PipelineRun'] as const).map((kind) =>
      withRetry(
        () => watchAll<Run>(kube, TEKTON, kind, onChange(kind), watchError(kind)),
        Date.now() + 30_000,
      ),
    ),
  )
  const watched = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = started.find((s) => s.status === 'rejected')
  if (failed) {
    await Promise.all(watched.map((w) => w.stop()))
    if (podName) options.kubelet!.end(CHAINS_NAMESPACE, podName, CHAINS_CONTROLLER_CONTAINER)
    throw failed.reason
  }
  return {
    podName,
    lines: () => [...lines],
    async stop() {
      stopped = true
      await Promise.all(watched.map((w) => w.stop()))
      await queue.drain()
      if (podName) options.kubelet!.end(CHAINS_NAMESPACE, podName, CHAINS_CONTROLLER_CONTAINER)
    },
  }
}

/**
 * One reconcile at a time per run, as a controller's work queue does; a
 * change that arrives meanwhile makes it run once more afterwards.
 */
class RunQueue {
  private readonly active = new Map<string, { again: boolean }>()
  private readonly running = new Set<Promise<void>>()

  constructor(
    private readonly work: (key: RunKey) => Promise<void>,
    private readonly onError: (key: RunKey, err: unknown) => void,
  ) {}

  add(key: RunKey): void {
    const id = `${key.kind}/${key.namespace}/${key.name}`
    const found = this.active.get(id)
    if (found) {
      found.again = true
      return
    }
    const state = { again: true }
    this.active.set(id, state)
    const loop = async () => {
      while (state.again) {
        state.again = false
        await this.work(key).catch((err: unknown) => this.onError(key, err))
      }
      this.active.delete(id)
    }
    const promise: Promise<void> = loop().finally(() => this.running.delete(promise))
    this.running.add(promise)
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running])
  }
}

interface Context {
  kube: Kube
  write(line: string): void
  modeOf(run: Run, key: RunKey): ChainsMode
  isStopped(): boolean
}

async function readRun(kube: Kube, key: RunKey): Promise<Run | undefined> {
  try {
    return (await kube.objects.read({
      apiVersion: TEKTON,
      kind: key.kind,
      metadata: { name: key.name, namespace: key.namespace },
    })) as Run
  } catch (err) {
    if (statusOf(err) === 404) return undefined
    throw err
  }
}

/** Done: Tekton set a final Succeeded condition (Chains signs failed runs too). */
function isDone(run: Run): boolean {
  const succeeded = run.status?.conditions?.find((c) => c.type === 'Succeeded')
  return succeeded !== undefined && succeeded.status !== 'Unknown'
}

async function reconcile(ctx: Context, key: RunKey): Promise<void> {
  if (ctx.isStopped()) return
  // The latest object, not a cached one: Chains checks the live annotations too.
  const run = await readRun(ctx.kube, key)
  if (!run || !isDone(run) || signedValue(run)) return
  const mode = ctx.modeOf(run, key)
  if (mode === 'never') return
  const log = new ZapLog(ctx.write, key)
  if (key.kind === 'PipelineRun' && !(await taskRunsReconciled(ctx.kube, run, log))) return
  await sign(ctx, run, key, mode, log)
}

/** Chains signs a PipelineRun only after each of its TaskRuns is signed or failed. */
async function taskRunsReconciled(kube: Kube, run: Run, log: ZapLog): Promise<boolean> {
  for (const child of run.status?.childReferences ?? []) {
    if (child.kind && child.kind !== 'TaskRun') continue
    const taskRun = await readRun(kube, {
      kind: 'TaskRun',
      namespace: run.metadata.namespace,
      name: child.name,
    })
    if (!taskRun) return true
    if (!taskRun.status?.completionTime) {
      log.info(
        `taskrun ${child.name} within pipelinerun is not yet finalized: status is not complete`,
      )
      return false
    }
    if (!signedValue(taskRun)) {
      log.info(`taskrun ${child.name} within pipelinerun is not yet reconciled`)
      return false
    }
  }
  return true
}

// --- signing -----------------------------------------------------------------

/** The key Chains signs with, loaded from the signing secret. */
interface Signer {
  privateKeyPem: string
  password: string
}

async function sign(
  ctx: Context,
  run: Run,
  key: RunKey,
  mode: ChainsMode,
  log: ZapLog,
): Promise<void> {
  const gvk = `${TEKTON}/${key.kind}`
  const where = `${gvk} ${key.namespace}/${key.name}`
  if (mode === 'fail') {
    log.error('Reconcile error', {
      error: `signing payload for ${key.kind === 'TaskRun' ? 'tekton' : 'tekton-pipeline-run'}: simulated failure (Chains stand-in mode 'fail')`,
    })
    await handleRetry(ctx.kube, run, key)
    return
  }
  let config: ChainsConfig
  try {
    config = await readConfig(ctx.kube)
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err
    log.error('Reconcile error', { error: err.message })
    await annotate(ctx.kube, key, { [CHAINS_SIGNED]: 'failed' })
    return
  }
  const signers = new Map<string, Signer | undefined>()
  const signerFor = async (type: string): Promise<Signer | undefined> => {
    if (!signers.has(type)) signers.set(type, await loadSigner(ctx.kube, type, mode, log))
    return signers.get(type)
  }

  const signables =
    key.kind === 'TaskRun'
      ? [
          { type: 'tekton', config: config.taskrun, kind: 'attestation' as const },
          { type: 'oci', config: config.oci, kind: 'signature' as const },
        ]
      : [{ type: 'tekton-pipeline-run', config: config.pipelinerun, kind: 'attestation' as const }]

  for (const signable of signables) {
    const enabled = !(signable.config.storage.size === 1 && signable.config.storage.has(''))
    if (signable.config.signer === 'none' || !enabled) continue
    const errors: string[] = []
    if (signable.kind === 'attestation') {
      let provenance: { subjects: Subject[]; predicate: Predicate }
      try {
        provenance =
          key.kind === 'TaskRun'
            ? await taskRunProvenance(ctx.kube, run, config)
            : await pipelineRunProvenance(ctx.kube, run, config)
      } catch (err) {
        // As in Chains: logged, and the attempt counts as failed (retried, then "failed").
        errors.push(`creating payload for ${signable.type}: ${apiMessage(err)}`)
        await retry(ctx, run, key, log, errors)
        return
      }
      const { subjects, predicate } = provenance
      log.info(`Created payload of type ${signable.config.format} for ${where}`)
      const signer = await signerFor(signable.config.signer)
      if (!signer) {
        // v0.29.2 goes on to the next object here, and in the end marks the run signed.
        log.warn(`No signer ${signable.config.signer} configured for ${signable.type}`)
        continue
      }
      log.info(`Signing object with ${signable.config.signer}`)
      log.info(`Storing payload on ${gvk}/${key.namespace}/${key.name}`)
      if (subjects.length === 0) {
        log.info(`No image subject to attest for ${where}. Skipping upload to registry`)
        continue
      }
      for (const subject of subjects) {
        const image = `${subject.name}@sha256:${subject.digest.sha256}`
        log.info(`Starting attestation upload to OCI for ${image}...`)
        await withCosign(signer, async (cosign) => {
          const file = path.join(cosign.dir, 'predicate.json')
          await writeFile(file, JSON.stringify(predicate))
          await cosign.run([
            'attest',
            ...['--predicate', file, '--type', 'slsaprovenance'],
            ...cosignFlags(config),
            image,
          ])
        }).catch((err: unknown) => errors.push(errorText(err)))
      }
    } else {
      for (const image of imagesOf(run.status?.results ?? [])) {
        log.info(`Created payload of type ${signable.config.format} for ${where}`)
        const signer = await signerFor(signable.config.signer)
        if (!signer) {
          log.warn(`No signer ${signable.config.signer} configured for ${signable.type}`)
          continue
        }
        log.info(`Signing object with ${signable.config.signer}`)
        log.info(`Uploading ${image} signature`)
        await withCosign(signer, (cosign) =>
          cosign.run(['sign', ...cosignFlags(config), image]).then(() => undefined),
        ).catch((err: unknown) => errors.push(errorText(err)))
      }
    }
    if (errors.length > 0) {
      await retry(ctx, run, key, log, errors)
      return
    }
  }
  await annotate(ctx.kube, key, { [CHAINS_SIGNED]: 'true' })
}

async function retry(
  ctx: Context,
  run: Run,
  key: RunKey,
  log: ZapLog,
  errors: string[],
): Promise<void> {
  for (const error of errors) log.error(error)
  log.error('Reconcile error', { error: errors.join('; ') })
  await handleRetry(ctx.kube, run, key)
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function cosignFlags(config: ChainsConfig): string[] {
  return [
    '--key',
    'cosign.key',
    '--tlog-upload=false',
    ...(config.insecure ? ['--allow-insecure-registry'] : []),
    '--yes',
  ]
}

/** Runs cosign with the key in a private temp dir (mode 600), the password only in its env. */
async function withCosign<T>(
  signer: Signer,
  use: (cosign: { dir: string; run(args: string[]): Promise<unknown> }) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'chains-stand-in-'))
  try {
    await chmod(dir, 0o700)
    await writeFile(path.join(dir, 'cosign.key'), signer.privateKeyPem, { mode: 0o600 })
    return await use({
      dir,
      run: (args) => runCosign({ cwd: dir, home: dir, password: signer.password }, args),
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * The signer Chains would load from its mounted secret: the cosign key opened
 * with its password. Like Chains, a key that cannot be loaded is only logged.
 */
async function loadSigner(
  kube: Kube,
  type: string,
  mode: ChainsMode,
  log: ZapLog,
): Promise<Signer | undefined> {
  if (type !== 'x509') {
    log.warn(`error configuring ${type} signer: not played by the Chains stand-in`)
    return undefined
  }
  if (mode === 'signed-without-signing') {
    log.warn(
      'error configuring x509 signer: withheld by the Chains stand-in (signed-without-signing)',
    )
    return undefined
  }
  let data: Record<string, string> = {}
  try {
    const secret = await kube.core.readNamespacedSecret({
      name: SIGNING_SECRET,
      namespace: CHAINS_NAMESPACE,
    })
    data = secret.data ?? {}
  } catch (err) {
    if (statusOf(err) !== 404) throw err
  }
  const file = (name: string) =>
    data[name] === undefined ? undefined : Buffer.from(data[name], 'base64').toString('utf8')
  const privateKeyPem = file('cosign.key')
  if (privateKeyPem === undefined) {
    log.warn(
      'error configuring x509 signer: no valid private key found, looked for: [x509.pem, cosign.key]',
    )
    return undefined
  }
  const password = file('cosign.password')
  if (password === undefined) {
    log.warn(
      'error configuring x509 signer: reading cosign.password file: open /etc/signing-secrets/cosign.password: no such file or directory',
    )
    return undefined
  }
  try {
    await openPrivateKey(privateKeyPem, password)
  } catch (err) {
    log.warn(`error configuring x509 signer: ${errorText(err)}`)
    return undefined
  }
  return { privateKeyPem, password }
}

/** chains-config as the stand-in plays it; anything it does not play throws Unsupported. */
async function readConfig(kube: Kube): Promise<ChainsConfig> {
  let data: Record<string, string> = {}
  try {
    const map = await kube.core.readNamespacedConfigMap({
      name: CHAINS_CONFIG,
      namespace: CHAINS_NAMESPACE,
    })
    data = map.data ?? {}
  } catch (err) {
    if (statusOf(err) !== 404) throw err
  }
  const artifact = (kind: string, format: string): ArtifactConfig => {
    const storage = new Set(
      (data[`artifacts.${kind}.storage`] ?? (kind === 'oci' ? 'oci' : 'tekton'))
        .split(',')
        .map((s) => s.trim()),
    )
    const config = {
      format: data[`artifacts.${kind}.format`] ?? format,
      storage,
      signer: data[`artifacts.${kind}.signer`] ?? 'x509',
    }
    const enabled = config.signer !== 'none' && !(storage.size === 1 && storage.has(''))
    const wanted = kind === 'oci' ? ['simplesigning'] : ['slsa/v1', 'in-toto']
    if (enabled && !wanted.includes(config.format)) {
      throw new Unsupported(
        `artifacts.${kind}.format ${config.format}: the Chains stand-in plays only ${wanted.join(', ')}`,
      )
    }
    const other = [...storage].filter((s) => s !== 'oci')
    if (enabled && other.length > 0) {
      throw new Unsupported(
        `artifacts.${kind}.storage ${other.join(',')}: the Chains stand-in stores only in oci`,
      )
    }
    return config
  }
  if (['true', 'manual'].includes(data['transparency.enabled'] ?? '')) {
    throw new Unsupported('transparency.enabled: the Chains stand-in has no Rekor')
  }
  if (data['storage.oci.repository']) {
    throw new Unsupported('storage.oci.repository: not played by the Chains stand-in')
  }
  if ((data['storage.oci.encoding-format'] ?? 'dsse') !== 'dsse') {
    throw new Unsupported('storage.oci.encoding-format: the Chains stand-in writes only dsse')
  }
  return {
    taskrun: artifact('taskrun', 'in-toto'),
    pipelinerun: {
      ...artifact('pipelinerun', 'in-toto'),
      deepInspection: data['artifacts.pipelinerun.enable-deep-inspection'] === 'true',
    },
    oci: artifact('oci', 'simplesigning'),
    builderId: data['builder.id'] || DEFAULT_BUILDER_ID,
    insecure: data['storage.oci.repository.insecure'] === 'true',
  }
}

// --- annotations -------------------------------------------------------------

/**
 * Server-side applies Chains' annotations: those it set before (read live)
 * plus the new ones, under its own field manager; forced on a conflict, as
 * Chains does.
 */
async function annotate(
  kube: Kube,
  key: RunKey,
  annotations: Record<string, string>,
): Promise<void> {
  const latest = await readRun(kube, key)
  const merged: Record<string, string> = {}
  for (const [name, value] of Object.entries(latest?.metadata.annotations ?? {})) {
    if (name.startsWith(CHAINS_ANNOTATION_PREFIX)) merged[name] = value
  }
  Object.assign(merged, annotations)
  const patch: KubeObject = {
    apiVersion: TEKTON,
    kind: key.kind,
    metadata: { name: key.name, namespace: key.namespace, annotations: merged },
  }
  try {
    await kube.objects.applyRaw(patch, CHAINS_FIELD_MANAGER, false)
  } catch (err) {
    if (statusOf(err) !== 409) throw err
    await kube.objects.applyRaw(patch, CHAINS_FIELD_MANAGER, true)
  }
}

/** `retries` "0", "1", "2", then `signed: failed` once it reaches 3. */
async function handleRetry(kube: Kube, run: Run, key: RunKey): Promise<void> {
  const latest = (await readRun(kube, key)) ?? run
  const current = latest.metadata.annotations?.[CHAINS_RETRIES]
  if (current !== undefined && !(Number(current) < CHAINS_MAX_RETRIES)) {
    await annotate(kube, key, { [CHAINS_SIGNED]: 'failed' })
    return
  }
  const next = current === undefined ? 0 : Number(current) + 1
  await annotate(kube, key, { [CHAINS_RETRIES]: String(next) })
}

// --- provenance (Chains' slsa/v1 format) --------------------------------------

/** `host/repo` of `host/repo[:tag]`, as go-containerregistry names a repository. */
function repositoryName(url: string): string {
  let repo = url.trim().replace(/@.*$/, '')
  const colon = repo.lastIndexOf(':')
  if (colon > repo.lastIndexOf('/')) repo = repo.slice(0, colon)
  const [first, ...rest] = repo.split('/')
  const hasHost = rest.length > 0 && (/[.:]/.test(first!) || first === 'localhost')
  if (hasHost) return first === 'docker.io' ? `index.docker.io/${rest.join('/')}` : repo
  return `index.docker.io/${rest.length === 0 ? `library/${repo}` : repo}`
}

function stringValue(value: unknown): string | undefined {
  return typeof value === 'string' ? value.trim() || undefined : undefined
}

/** `alg:hex` with a known algorithm and a hex of its length, else undefined. */
function parseDigest(text: unknown): [string, string] | undefined {
  const match = /^\s*(sha256|sha512|sha1):([0-9a-f]+)\s*$/i.exec(
    typeof text === 'string' ? text : '',
  )
  if (!match) return undefined
  const alg = match[1]!.toLowerCase()
  const hex = match[2]!
  const length = { sha256: 64, sha512: 128, sha1: 40 }[alg]
  return hex.length === length ? [alg, hex] : undefined
}

/** Images named by `*IMAGE_URL` + `*IMAGE_DIGEST` pairs and `IMAGES`, as `repo@sha256:hex`, once each. */
function imagesOf(results: RunResult[]): string[] {
  const pairs = new Map<string, { url?: string; digest?: string }>()
  for (const result of results) {
    const value = stringValue(result.value)
    if (!value) continue
    for (const [suffix, field] of [
      ['IMAGE_URL', 'url'],
      ['IMAGE_DIGEST', 'digest'],
    ] as const) {
      if (!result.name.endsWith(suffix)) continue
      const marker = result.name.slice(0, -suffix.length)
      pairs.set(marker, { ...pairs.get(marker), [field]: value })
    }
  }
  const images: string[] = []
  const add = (url: string, digest: string) => {
    const parsed = parseDigest(digest)
    if (!parsed || parsed[0] !== 'sha256') return
    const image = `${repositoryName(url)}@sha256:${parsed[1]}`
    if (!images.includes(image)) images.push(image)
  }
  for (const { url, digest } of pairs.values()) if (url && digest) add(url, digest)
  const list = results.find((r) => r.name === 'IMAGES')
  for (const entry of (stringValue(list?.value) ?? '').split(/[\n,]/)) {
    const [url, digest] = entry.trim().split('@')
    if (url && digest) add(url, digest)
  }
  return images
}

function subjectsOf(results: RunResult[]): Subject[] {
  return imagesOf(results).map((image) => {
    const [name, digest] = image.split('@sha256:') as [string, string]
    return { name, digest: { sha256: digest } }
  })
}

/** Appends items not yet present (same name and a common digest), merging digests, as Chains does. */
function appendArtifacts<T extends Material | Subject>(
  list: T[],
  items: T[],
  nameOf: (item: T) => string,
): T[] {
  for (const item of items) {
    const same = list.find(
      (a) =>
        nameOf(a) === nameOf(item) &&
        Object.entries(a.digest).some(([alg, hex]) => item.digest[alg] === hex),
    )
    if (same) Object.assign(same.digest, item.digest)
    else list.push({ ...item, digest: { ...item.digest } })
  }
  return list
}
const appendMaterials = (list: Material[], items: Material[]) =>
  appendArtifacts(list, items, (m) => m.uri)
const appendSubjects = (list: Subject[], items: Subject[]) =>
  appendArtifacts(list, items, (s) => s.name)

/** Materials from `*ARTIFACT_INPUTS` object results (`{uri, digest: "alg:hex"}`). */
function inputMaterials(results: RunResult[]): Material[] {
  const materials: Material[] = []
  for (const result of results) {
    if (!result.name.endsWith('ARTIFACT_INPUTS')) continue
    const value = result.value as { uri?: unknown; digest?: unknown } | null
    const uri = typeof value === 'object' && value ? stringValue(value.uri) : undefined
    const digest = typeof value === 'object' && value ? parseDigest(value.digest) : undefined
    if (uri && digest) materials.push({ uri, digest: { [digest[0]]: digest[1] } })
  }
  return materials
}

/** Git materials from CHAINS-GIT_URL / CHAINS-GIT_COMMIT params and results. */
function gitMaterials(sources: (Param | RunResult)[][]): Material[] {
  let url: string | undefined
  let commit: string | undefined
  for (const list of sources) {
    for (const p of list) {
      const value = stringValue('value' in p ? p.value : p.default)
      if (p.name === 'CHAINS-GIT_URL') url = value ?? url
      if (p.name === 'CHAINS-GIT_COMMIT') commit = value ?? commit
    }
  }
  if (!url || !commit) return []
  const uri = `${url.startsWith('git+') ? '' : 'git+'}${url}${url.endsWith('.git') ? '' : '.git'}`
  return [{ uri, digest: { sha1: commit } }]
}

function invocation(run: Run, params: Param[] | undefined, specs: Param[] | undefined): Invocation {
  const parameters: Record<string, unknown> = {}
  for (const p of specs ?? []) if (p.default !== undefined) parameters[p.name] = p.default
  for (const p of params ?? []) parameters[p.name] = p.value
  const environment: NonNullable<Invocation['environment']> = {}
  const annotations = Object.fromEntries(
    Object.entries(run.metadata.annotations ?? {}).filter(
      ([name]) =>
        !name.startsWith(CHAINS_ANNOTATION_PREFIX) &&
        name !== 'kubectl.kubernetes.io/last-applied-configuration',
    ),
  )
  if (Object.keys(annotations).length > 0) environment.annotations = annotations
  const labels = run.metadata.labels ?? {}
  if (Object.keys(labels).length > 0) environment.labels = labels
  return {
    configSource: {},
    parameters,
    ...(Object.keys(environment).length > 0 && { environment }),
  }
}

/** RFC 3339 in UTC, seconds as Kubernetes keeps them. */
function utc(time: string | undefined): string | undefined {
  return time ? new Date(time).toISOString().replace(/\.000Z$/, 'Z') : undefined
}

function metadata(run: Run): Predicate['metadata'] {
  return {
    buildStartedOn: utc(run.status?.startTime),
    buildFinishedOn: utc(run.status?.completionTime),
    completeness: { parameters: false, environment: false, materials: false },
    reproducible: run.metadata.labels?.[CHAINS_REPRODUCIBLE] === 'true',
  }
}

async function readSpec<T>(kube: Kube, kind: string, namespace: string, name: string): Promise<T> {
  const found = await kube.objects.read({ apiVersion: TEKTON, kind, metadata: { name, namespace } })
  return (found as unknown as { spec: T }).spec
}

/** What Tekton copies into `status.taskSpec`; the Task when the status lacks it. */
async function taskSpecOf(kube: Kube, run: Run): Promise<TaskSpec | undefined> {
  if (run.status?.taskSpec) return run.status.taskSpec
  if (run.spec.taskSpec) return run.spec.taskSpec
  const name = run.spec.taskRef?.name
  return name ? readSpec<TaskSpec>(kube, 'Task', run.metadata.namespace, name) : undefined
}

async function pipelineSpecOf(kube: Kube, run: Run): Promise<PipelineSpec | undefined> {
  if (run.status?.pipelineSpec) return run.status.pipelineSpec
  if (run.spec.pipelineSpec) return run.spec.pipelineSpec
  const name = run.spec.pipelineRef?.name
  return name ? readSpec<PipelineSpec>(kube, 'Pipeline', run.metadata.namespace, name) : undefined
}

/**
 * The image each step ran, `repo@sha256:hex`: the step's imageID as Tekton
 * records it, else the Pod's (container status imageID, then its image).
 */
async function stepImages(kube: Kube, run: Run): Promise<Map<string, string>> {
  const images = new Map<string, string>()
  let pod: V1Pod | undefined
  for (const step of run.status?.steps ?? []) {
    let image = step.imageID
    if (!image && run.status?.podName) {
      pod ??= await kube.core.readNamespacedPod({
        name: run.status.podName,
        namespace: run.metadata.namespace,
      })
      const container = step.container ?? `step-${step.name}`
      image =
        pod.status?.containerStatuses?.find((c) => c.name === container)?.imageID ||
        pod.spec?.containers.find((c) => c.name === container)?.image
    }
    if (!image) throw new Error(`step ${step.name} of ${run.metadata.name} has no image`)
    images.set(step.name, image.replace(/^docker-pullable:\/\//, ''))
  }
  return images
}

function imageMaterial(imageId: string): Material {
  const [uri, digest, extra] = imageId.split('@')
  const parsed = parseDigest(digest)
  if (!uri || !parsed || extra !== undefined) {
    throw new Error(`expected imageID ${imageId} to be separable by @ and :`)
  }
  return { uri: `oci://${uri}`, digest: { [parsed[0]]: parsed[1] } }
}

function stepAttestations(
  spec: TaskSpec | undefined,
  run: Run,
  images: Map<string, string>,
): StepAttestation[] {
  return (run.status?.steps ?? []).map((state) => {
    const step = spec?.steps.find((s) => s.name === state.name)
    return {
      entryPoint: step?.script ?? (step?.command ?? []).join(' '),
      arguments: step?.args ?? null,
      environment: { image: `oci://${images.get(state.name) ?? ''}`, container: state.name },
      annotations: null,
    }
  })
}

async function taskRunProvenance(
  kube: Kube,
  run: Run,
  config: ChainsConfig,
): Promise<{ subjects: Subject[]; predicate: Predicate }> {
  const spec = await taskSpecOf(kube, run)
  const images = await stepImages(kube, run)
  const results = run.status?.results ?? []
  const materials = appendMaterials(
    [...images.values()].map(imageMaterial),
    gitMaterials([spec?.params ?? [], run.spec.params ?? [], results]),
  )
  appendMaterials(materials, inputMaterials(results))
  return {
    subjects: subjectsOf(results),
    predicate: {
      builder: { id: config.builderId },
      buildType: `${TEKTON}/TaskRun`,
      invocation: invocation(run, run.spec.params, spec?.params),
      buildConfig: { steps: stepAttestations(spec, run, images) },
      metadata: metadata(run),
      materials,
    },
  }
}

/** Pipeline tasks whose results this task's params or `when` refer to. */
function resultRefs(task: PipelineTask): string[] {
  const text = JSON.stringify([task.params ?? [], task.when ?? []])
  return [...text.matchAll(/\$\(tasks\.([^.)]+)\.results\./g)].map((m) => m[1]!)
}

function taskStatus(run: Run): string {
  const first = run.status?.conditions?.[0]
  if (!first) return ''
  return first.status === 'True' ? 'Succeeded' : first.status === 'False' ? 'Failed' : 'Running'
}

async function pipelineRunProvenance(
  kube: Kube,
  run: Run,
  config: ChainsConfig,
): Promise<{ subjects: Subject[]; predicate: Predicate }> {
  const namespace = run.metadata.namespace
  const spec = await pipelineSpecOf(kube, run)
  const listed = await kube.objects.list<Run>(
    TEKTON,
    'TaskRun',
    namespace,
    undefined,
    undefined,
    undefined,
    undefined,
    `tekton.dev/pipelineRun=${run.metadata.name}`,
  )
  const taskRuns = listed.items as Run[]
  const tasks: TaskAttestation[] = []
  const materials: Material[] = []
  let subjects: Subject[] = []
  const inspected: Material[] = []
  const pipelineTasks = [...(spec?.tasks ?? []), ...(spec?.finally ?? [])]
  let last = ''
  for (const [index, task] of pipelineTasks.entries()) {
    const runs = taskRuns.filter(
      (t) => t.metadata.labels?.['tekton.dev/pipelineTask'] === task.name,
    )
    for (const taskRun of runs) {
      if (!taskRun.status?.completionTime) continue
      const taskSpec = await taskSpecOf(kube, taskRun)
      const images = await stepImages(kube, taskRun)
      appendMaterials(materials, [...images.values()].map(imageMaterial))
      const results = taskRun.status.results ?? []
      if (config.pipelinerun.deepInspection) {
        subjects = appendSubjects(subjects, subjectsOf(results))
        appendMaterials(
          inspected,
          gitMaterials([taskSpec?.params ?? [], taskRun.spec.params ?? [], results]),
        )
        appendMaterials(inspected, inputMaterials(results))
      }
      if (!taskSpec || taskSpec.steps.length !== (taskRun.status.steps ?? []).length) continue
      const after = [...(task.runAfter ?? [])]
      for (const ref of resultRefs(task)) if (!after.includes(ref)) after.push(ref)
      // A finally task without runAfter ran after the last task that ran.
      if (after.length === 0 && index >= (spec?.tasks.length ?? 0) && last) after.push(last)
      const serviceAccountName = run.spec.taskRunTemplate?.serviceAccountName
      const steps = stepAttestations(taskSpec, taskRun, images)
      tasks.push({
        name: task.name,
        ...(after.length > 0 && { after }),
        ref: task.taskRef ?? {},
        startedOn: utc(taskRun.status.startTime) ?? '',
        finishedOn: utc(taskRun.status.completionTime) ?? '',
        ...(serviceAccountName && { serviceAccountName }),
        status: taskStatus(taskRun),
        ...(steps.length > 0 && { steps }),
        invocation: invocation(taskRun, taskRun.spec.params, taskSpec.params),
        ...(results.length > 0 && { results }),
      })
    }
    if (index < (spec?.tasks.length ?? 0)) last = task.name
  }
  const results = run.status?.results ?? []
  appendMaterials(materials, inputMaterials(results))
  appendMaterials(materials, inspected)
  appendMaterials(materials, gitMaterials([spec?.params ?? [], run.spec.params ?? [], results]))
  return {
    subjects: appendSubjects(subjects, subjectsOf(results)),
    predicate: {
      builder: { id: config.builderId },
      buildType: `${TEKTON}/PipelineRun`,
      invocation: invocation(run, run.spec.params, spec?.params),
      buildConfig: { tasks },
      metadata: metadata(run),
      materials,
    },
  }
}

// --- the controller's log ----------------------------------------------------

/**
 * Lines as Chains' knative logger writes them (config-logging: zap, JSON,
 * ISO 8601 `ts`, logger `watcher`), with the reconciled object's key.
 */
class ZapLog {
  constructor(
    private readonly write: (line: string) => void,
    private readonly key: RunKey,
  ) {}

  private line(level: string, msg: string, fields: Record<string, string> = {}): void {
    const kind = this.key.kind.toLowerCase()
    this.write(
      JSON.stringify({
        level,
        ts: new Date().toISOString(),
        logger: 'watcher',
        caller: `${kind}/${kind}.go:0`,
        msg,
        'knative.dev/controller': `github.com.tektoncd.chains.pkg.reconciler.${kind}.Reconciler`,
        'knative.dev/kind': `tekton.dev.${this.key.kind}`,
        'knative.dev/traceid': randomUUID(),
        'knative.dev/key': `${this.key.namespace}/${this.key.name}`,
        ...fields,
      }),
    )
  }

  info(msg: string): void {
    this.line('info', msg)
  }
  warn(msg: string): void {
    this.line('warn', msg)
  }
  error(msg: string, fields?: Record<string, string>): void {
    this.line('error', msg, fields)
  }
}

/** The controller's Pod record, Running on the kubelet stand-in's Node, its container started. */
async function startControllerPod(kube: Kube, kubelet: KubeletStandIn): Promise<string> {
  try {
    await kube.core.createNamespace({ body: { metadata: { name: CHAINS_NAMESPACE } } })
  } catch (err) {
    if (statusOf(err) !== 409) throw err
  }
  const suffix = randomBytes(4).toString('hex').slice(0, 5)
  const name = `${CHAINS_CONTROLLER_CONTAINER}-${suffix}`
  await kube.core.createNamespacedPod({
    namespace: CHAINS_NAMESPACE,
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: CHAINS_NAMESPACE,
        labels: {
          ...CHAINS_CONTROLLER_LABEL,
          'app.kubernetes.io/name': 'controller',
          'app.kubernetes.io/component': 'controller',
          'app.kubernetes.io/instance': 'default',
          'app.kubernetes.io/part-of': 'tekton-chains',
        },
      },
      spec: {
        nodeName: kubelet.nodeName,
        serviceAccountName: 'tekton-chains-controller',
        containers: [{ name: CHAINS_CONTROLLER_CONTAINER, image: CONTROLLER_IMAGE }],
      },
    },
  })
  const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  await kube.core.patchNamespacedPodStatus(
    {
      name,
      namespace: CHAINS_NAMESPACE,
      body: {
        status: {
          phase: 'Running',
          hostIP: '127.0.0.1',
          containerStatuses: [
            {
              name: CHAINS_CONTROLLER_CONTAINER,
              image: CONTROLLER_IMAGE,
              imageID: '',
              ready: true,
              restartCount: 0,
              state: { running: { startedAt: startedAt as unknown as Date } },
            },
          ],
        },
      },
    },
    mergePatchHeader,
  )
  kubelet.start(CHAINS_NAMESPACE, name, CHAINS_CONTROLLER_CONTAINER)
  return name
}
