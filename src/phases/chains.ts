import * as core from '@actions/core'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import {
  AttachmentError,
  verifyImageAttachments,
  type ImageAttachments,
  type VerifiedAttestation,
} from '../cosign/attached.js'
import { UserError } from '../errors.js'
import { isRecord } from '../json.js'
import {
  CHAINS_CONTROLLER_CONTAINER,
  CHAINS_CONTROLLER_LABEL,
  CHAINS_RETRIES,
  CHAINS_SIGNED,
  signedValue,
} from '../kube/chains-annotations.js'
import { apiMessage, statusOf, type Kube } from '../kube/client.js'
import type { KubeObject } from '../kube/objects.js'
import { waitFor, WaitTimeoutError } from '../kube/wait.js'
import type { RegistryClient } from '../oci/client.js'
import { formatReference, type Reference } from '../oci/reference.js'
import type { Digest } from '../oci/types.js'
import { summarizeProvenance, type ProvenanceSummary } from '../provenance/summary.js'
import { isSlsaV02, type InTotoStatement } from '../provenance/types.js'
import { CHAINS_CONTROLLER, CHAINS_NAMESPACE, SIGNING_SECRET } from './tekton.js'

const TEKTON = 'tekton.dev/v1'
/** How many of the Chains controller's lines about the run an error shows. */
const LOG_LINES = 20
/** How far back the controller's log is read for them. */
const LOG_TAIL = 5_000

export interface ChainsInputs {
  /** `namespace/name` of the PipelineRun (what runPipeline returned). */
  pipelineRun: string
  /** The model, pinned to the digest the run reported. */
  image: Reference & { digest: Digest }
  /** The public half of the key in Chains' signing secret. */
  publicKeyPem: string
  /** Where the PipelineRun's provenance Statement is written (JSON). */
  provenancePath: string
}

export interface ChainsDeps {
  kube: Kube
  registry: RegistryClient
  /** Epoch ms by which Chains must have signed. */
  deadline: number
}

export interface ChainsOutcome {
  /** Attestations in `.att` that verify with the public key. */
  attestations: number
  /** Signatures in `.sig` that verify with the public key. */
  signatures: number
  /** The PipelineRun's provenance (in-toto Statement) naming the model. */
  statement: InTotoStatement
  provenance: ProvenanceSummary
  provenancePath: string
}

type Run = KubeObject & {
  status?: { childReferences?: { name: string; kind?: string }[] }
}

/**
 * Waits until Tekton Chains has signed the PipelineRun and its TaskRuns
 * (`chains.tekton.dev/signed`), then checks what it left in the registry:
 * released Chains says `signed=true` even when it had no signer, so the
 * model's `.sig` and `.att` must exist and verify with the public key. Writes
 * the PipelineRun's attestation of the model to `provenancePath`.
 */
export async function waitForChains(
  inputs: ChainsInputs,
  deps: ChainsDeps,
): Promise<ChainsOutcome> {
  const { kube, deadline } = deps
  const [namespace, name] = splitRun(inputs.pipelineRun)
  const where = `PipelineRun ${namespace}/${name}`

  const runs = await waitUntilMarked(kube, namespace, name, deadline)
  const failed = runs.filter((r) => signedValue(r) === 'failed')
  if (failed.length > 0) {
    throw new UserError(
      `Tekton Chains failed to sign ${failed.map(describeMarked).join(', ')} (${CHAINS_SIGNED}: failed)` +
        (await controllerLog(kube, runs)),
    )
  }
  core.info(`Tekton Chains marked ${runs.map(describe).join(', ')} signed`)

  const imageName = formatReference(inputs.image)
  const found = await deps.registry.findCosignAttachments(inputs.image, inputs.image.digest)
  const missing = [
    !found.signatures && '.sig (signature)',
    !found.attestations && '.att (attestations)',
  ].filter(Boolean)
  if (missing.length > 0) {
    throw new UserError(
      `Tekton Chains marked ${where} signed (${CHAINS_SIGNED}: true), but ${imageName} has no ` +
        `${missing.join(' and no ')} in ${inputs.image.registry}. Released Chains does this when it ` +
        `could not load a signer (known bug: "No signer x509 configured", yet signed=true): check that ` +
        `Secret ${CHAINS_NAMESPACE}/${SIGNING_SECRET} holds cosign.key and the cosign.password that opens ` +
        `it, and that chains-config stores in oci (artifacts.taskrun.storage, ` +
        `artifacts.pipelinerun.storage, artifacts.oci.storage)` +
        (await controllerLog(kube, runs)),
    )
  }

  let attachments: ImageAttachments
  try {
    attachments = await verifyImageAttachments(deps.registry, inputs.image, inputs.publicKeyPem)
  } catch (err) {
    if (!(err instanceof AttachmentError)) throw err
    if (err.failed === 'signature' && err.verifiedAttestations > 0) {
      throw new UserError(signatureSkippedMessage(imageName, err.message))
    }
    throw new UserError(
      `${err.message}; Chains signed with another key than the public key given, or the ` +
        `signing secret changed after the controller started`,
    )
  }
  const chosen = pipelineRunAttestation(attachments.attestations, inputs.image.digest, name)
  if (!chosen) {
    const kinds = attachments.attestations.map((a) => buildTypeOf(a.statement)).join(', ')
    throw new UserError(
      `${imageName} has ${attachments.attestations.length} attestation(s) that verify (${kinds}), ` +
        `but none is a PipelineRun attestation with the model among its subjects: the Pipeline must ` +
        `expose the IMAGE_URL and IMAGE_DIGEST results (or chains-config set ` +
        `artifacts.pipelinerun.enable-deep-inspection: "true"), and chains-config must set ` +
        `artifacts.pipelinerun.format: slsa/v1 and artifacts.pipelinerun.storage: oci`,
    )
  }
  const statement = chosen.statement
  const provenance = summarizeProvenance(statement)
  await mkdir(path.dirname(inputs.provenancePath), { recursive: true })
  await writeFile(inputs.provenancePath, `${JSON.stringify(statement, null, 2)}\n`)
  core.info(
    `${imageName}: ${attachments.signatures.length} signature(s) and ` +
      `${attachments.attestations.length} attestation(s) verify with the public key; ` +
      `provenance of ${where} written to ${inputs.provenancePath}`,
  )
  return {
    attestations: attachments.attestations.length,
    signatures: attachments.signatures.length,
    statement,
    provenance,
    provenancePath: inputs.provenancePath,
  }
}

/**
 * The attestations verify with this run's key but no signature does: Chains
 * (v0.29) does not write a `.sig` when one with the same payload exists,
 * whatever key made it, and the payload names only the image and its digest.
 * An earlier run signed this very model (the trainer is reproducible: the
 * same dataset gives the same digest) with another key.
 */
function signatureSkippedMessage(imageName: string, detail: string): string {
  return (
    `${imageName} was signed before with another key, and Tekton Chains kept that signature ` +
    `instead of writing this run's: its attestations verify with this run's key, its signature ` +
    `does not (${detail}). Chains skips writing a signature when one with the same payload ` +
    `already exists, whatever key made it, and the payload names only the model's digest, which ` +
    `a reproducible training repeats. Sign every run with the same key (signing-key and ` +
    `signing-key-password), or push to a repository that holds no earlier signature of this ` +
    `model (a fresh embedded registry, or another image repository)`
  )
}

function splitRun(run: string): [string, string] {
  const [namespace, name, ...rest] = run.split('/')
  if (!namespace || !name || rest.length > 0) {
    throw new TypeError(`expected namespace/name of a PipelineRun, got ${JSON.stringify(run)}`)
  }
  return [namespace, name]
}

function describe(run: KubeObject): string {
  return `${run.kind} ${run.metadata.namespace}/${run.metadata.name}`
}

function describeMarked(run: KubeObject): string {
  const retries = run.metadata.annotations?.[CHAINS_RETRIES]
  return `${describe(run)}${retries === undefined ? '' : ` (${CHAINS_RETRIES}: ${retries})`}`
}

async function listTaskRuns(kube: Kube, namespace: string, pipelineRun: string): Promise<Run[]> {
  const list = await kube.objects.list<Run>(
    TEKTON,
    'TaskRun',
    namespace,
    undefined,
    undefined,
    undefined,
    undefined,
    `tekton.dev/pipelineRun=${pipelineRun}`,
  )
  return list.items
}

/**
 * Waits for Chains' mark on the PipelineRun (Chains marks it only after each
 * of its TaskRuns), then on its TaskRuns; returns the PipelineRun and its
 * TaskRuns as marked. A timeout names what is not marked yet.
 */
async function waitUntilMarked(
  kube: Kube,
  namespace: string,
  name: string,
  deadline: number,
): Promise<Run[]> {
  const where = `PipelineRun ${namespace}/${name}`
  const what = `Tekton Chains to sign ${where} and its TaskRuns`
  const unmarked = async (pipelineRun: Run | undefined): Promise<string> => {
    if (!pipelineRun) return 'the PipelineRun does not exist'
    const taskRuns = await listTaskRuns(kube, namespace, name).catch(() => [])
    const pending = [pipelineRun, ...taskRuns].filter((r) => !signedValue(r))
    return `not signed: ${pending.map(describeMarked).join(', ') || 'none'}`
  }
  try {
    const [pipelineRun] = await waitFor<Run>(
      kube,
      { apiVersion: TEKTON, kind: 'PipelineRun', namespace, name },
      ([found]) => found !== undefined && signedValue(found) !== undefined,
      { deadline, what, diagnose: ([found]) => unmarked(found) },
    )
    const children = new Set(
      (pipelineRun!.status?.childReferences ?? [])
        .filter((c) => !c.kind || c.kind === 'TaskRun')
        .map((c) => c.name),
    )
    // All TaskRuns of the namespace are watched; ours are told by the PipelineRun's label.
    const ours = (taskRuns: Run[]) =>
      taskRuns.filter(
        (t) =>
          children.has(t.metadata.name) || t.metadata.labels?.['tekton.dev/pipelineRun'] === name,
      )
    const taskRuns = await waitFor<Run>(
      kube,
      { apiVersion: TEKTON, kind: 'TaskRun', namespace },
      (all) => {
        const mine = ours(all)
        return mine.length >= children.size && mine.every((t) => signedValue(t) !== undefined)
      },
      { deadline, what, diagnose: () => unmarked(pipelineRun) },
    )
    return [pipelineRun!, ...ours(taskRuns)]
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) throw err
    throw new UserError(
      `${err.message}. ${await controllerState(kube)}` +
        (await controllerLog(kube, [{ metadata: { name, namespace } }])),
    )
  }
}

/** Whether the Chains controller runs, from its Deployment: the first thing to check when nothing is signed. */
async function controllerState(kube: Kube): Promise<string> {
  const where = `Deployment ${CHAINS_NAMESPACE}/${CHAINS_CONTROLLER}`
  try {
    const deployment = await kube.apps.readNamespacedDeployment({
      name: CHAINS_CONTROLLER,
      namespace: CHAINS_NAMESPACE,
    })
    const wanted = deployment.spec?.replicas ?? 1
    const ready = deployment.status?.readyReplicas ?? 0
    if (wanted === 0)
      return `The Tekton Chains controller is scaled to zero (${where} has 0 replicas).`
    if (ready === 0)
      return `The Tekton Chains controller is not running: ${where} has 0 of ${wanted} replicas ready.`
    return `The Tekton Chains controller runs (${where}: ${ready} of ${wanted} ready), yet has not signed them.`
  } catch (err) {
    if (statusOf(err) === 404) return `There is no ${where}: is Tekton Chains installed?`
    return `Is the Tekton Chains controller running (${where})? It cannot be read: ${apiMessage(err)}.`
  }
}

/** The in-toto Statement's buildType (SLSA v0.2 or v1), else its predicate type, for messages. */
function buildTypeOf(statement: InTotoStatement): string {
  const predicate = isRecord(statement.predicate) ? statement.predicate : {}
  const definition = isRecord(predicate.buildDefinition) ? predicate.buildDefinition : {}
  const buildType = predicate.buildType ?? definition.buildType
  return typeof buildType === 'string' ? buildType : statement.predicateType
}

/** The tasks of a Chains slsa/v1 PipelineRun predicate; undefined for any other statement. */
function pipelineTasks(statement: InTotoStatement): unknown[] | undefined {
  if (!isSlsaV02(statement)) return undefined
  const buildConfig: unknown = statement.predicate.buildConfig
  const tasks = isRecord(buildConfig) ? buildConfig.tasks : undefined
  if (Array.isArray(tasks)) return tasks
  return buildTypeOf(statement).endsWith('/PipelineRun') ? [] : undefined
}

/**
 * The PipelineRun attestation whose subjects hold the model's digest: the one
 * of this run (its tasks carry the `tekton.dev/pipelineRun` label), else the
 * newest (the same model trained again has the same digest, so earlier runs'
 * attestations may sit in `.att` too).
 */
function pipelineRunAttestation(
  attestations: VerifiedAttestation[],
  digest: Digest,
  pipelineRun: string,
): VerifiedAttestation | undefined {
  const hex = digest.slice('sha256:'.length)
  const candidates = attestations.filter(
    (a) =>
      pipelineTasks(a.statement) !== undefined &&
      a.statement.subject.some((s) => s.digest.sha256 === hex),
  )
  const ofThisRun = candidates.find((a) =>
    (pipelineTasks(a.statement) ?? []).some((task) => {
      const invocation = isRecord(task) ? task.invocation : undefined
      const environment = isRecord(invocation) ? invocation.environment : undefined
      const labels = isRecord(environment) ? environment.labels : undefined
      return isRecord(labels) && labels['tekton.dev/pipelineRun'] === pipelineRun
    }),
  )
  return ofThisRun ?? candidates.at(-1)
}

/**
 * The Chains controller's log lines about the runs (the PipelineRun's name
 * also starts its TaskRuns' names), read from its pods through the API, as
 * text to append to an error; says so when none can be read.
 */
async function controllerLog(kube: Kube, runs: Pick<KubeObject, 'metadata'>[]): Promise<string> {
  const names = runs.map((r) => r.metadata.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  const mentions = new RegExp(`(^|[^a-z0-9-])(${names.join('|')})($|[^a-z0-9-])`)
  const selector = Object.entries(CHAINS_CONTROLLER_LABEL)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')
  const source = `the Chains controller's log (pods ${selector} in ${CHAINS_NAMESPACE})`
  let pods
  try {
    pods = await kube.core.listNamespacedPod({
      namespace: CHAINS_NAMESPACE,
      labelSelector: selector,
    })
  } catch (err) {
    return `\n(${source} could not be read: ${apiMessage(err)})`
  }
  if (pods.items.length === 0) return `\n(${source} could not be read: no such pod)`
  const lines: string[] = []
  const problems: string[] = []
  for (const pod of pods.items) {
    const podName = pod.metadata?.name ?? ''
    try {
      const text = await kube.core.readNamespacedPodLog({
        name: podName,
        namespace: CHAINS_NAMESPACE,
        container: CHAINS_CONTROLLER_CONTAINER,
        tailLines: LOG_TAIL,
      })
      for (const line of String(text).split('\n')) {
        if (mentions.test(line)) lines.push(readableLine(line))
      }
    } catch (err) {
      problems.push(`${podName}: ${apiMessage(err)}`)
    }
  }
  if (lines.length === 0) {
    return problems.length > 0
      ? `\n(${source} could not be read: ${problems.join('; ')})`
      : `\n(no line of ${source} mentions ${runs.map((r) => r.metadata.name).join(', ')})`
  }
  const shown = lines.slice(-LOG_LINES)
  return `\nlast ${shown.length} lines of ${source} about this run:\n${shown.join('\n')}`
}

/** A zap JSON line as `time level message: error`; other lines as they are. */
function readableLine(line: string): string {
  try {
    const entry: unknown = JSON.parse(line)
    if (!isRecord(entry) || typeof entry.msg !== 'string') return line
    const error = typeof entry.error === 'string' ? `: ${entry.error}` : ''
    return `${String(entry.ts ?? '')} ${String(entry.level ?? '')} ${entry.msg}${error}`.trim()
  } catch {
    return line
  }
}
