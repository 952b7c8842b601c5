/**
 * in-toto Statements and the SLSA provenance predicates Tekton Chains writes.
 *
 * The shapes follow what Chains emits: `slsa/v1` in chains-config is an
 * in-toto Statement v0.1 with a SLSA v0.2 predicate; `slsa/v2alpha*` is a
 * Statement v1 with a SLSA v1 predicate. Fields Chains may omit are optional.
 */
import { UserError } from '../errors.js'
import { isRecord, parseJson } from '../json.js'

export const STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1'
export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1'
export const SLSA_PROVENANCE_V02 = 'https://slsa.dev/provenance/v0.2'
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1'

/** buildType of Chains' TaskRun attestations: `tekton.dev/v1/TaskRun` (v0.29), `tekton.dev/v1beta1/TaskRun` (older). */
export const TASKRUN_BUILD_TYPE = /^tekton\.dev\/v1(beta1)?\/TaskRun$/
/** buildType of Chains' PipelineRun attestations, either API version. */
export const PIPELINERUN_BUILD_TYPE = /^tekton\.dev\/v1(beta1)?\/PipelineRun$/

export type StatementType = typeof STATEMENT_V01 | typeof STATEMENT_V1

/** Algorithm name to lowercase hex, e.g. `{sha256: "bf64…"}`. */
export interface DigestSet {
  sha256?: string
  [algorithm: string]: string | undefined
}

export interface Subject {
  name: string
  digest: DigestSet
}

/** An in-toto Statement; the predicate is narrowed by `predicateType`. */
export interface Statement<P = unknown, T extends string = string> {
  _type: StatementType
  subject: Subject[]
  predicateType: T
  predicate: P
}

export type InTotoStatement = Statement

// --- Tekton values -----------------------------------------------------------

/** A Tekton param or result value: string, array or object (of strings). */
export type ParamValue = string | string[] | { [key: string]: string }

/** A TaskRun result as Chains copies it into the provenance. */
export interface TaskRunResult {
  name: string
  type?: 'string' | 'array' | 'object'
  value: ParamValue
}

// --- SLSA provenance v0.2 (chains-config format slsa/v1) ---------------------

export interface SlsaV02ConfigSource {
  uri?: string
  digest?: DigestSet
  entryPoint?: string
}

export interface SlsaV02Invocation {
  configSource?: SlsaV02ConfigSource
  parameters?: Record<string, ParamValue>
  /** Chains records the run's labels and annotations here. */
  environment?: {
    labels?: Record<string, string>
    annotations?: Record<string, string>
  }
}

/** One step of a TaskRun as Chains records it. */
export interface StepAttestation {
  /** The step's script or command. */
  entryPoint: string
  arguments?: string[] | null
  environment: {
    container: string
    /** `oci://repo@sha256:…`, the image the step ran. */
    image: string
  }
  annotations?: Record<string, string> | null
}

/** buildConfig of a TaskRun attestation. */
export interface TaskRunBuildConfig {
  steps: StepAttestation[]
}

export interface TaskRef {
  name?: string
  kind?: string
  apiVersion?: string
  bundle?: string
  resolver?: string
  params?: { name: string; value: ParamValue }[]
}

/** One executed task of a PipelineRun attestation. */
export interface TaskAttestation {
  name: string
  after?: string[]
  ref: TaskRef
  startedOn: string
  finishedOn: string
  /** "Succeeded", "Failed" or "Running". */
  status: string
  steps?: StepAttestation[]
  invocation: SlsaV02Invocation
  results?: TaskRunResult[]
}

/** buildConfig of a PipelineRun attestation. */
export interface PipelineRunBuildConfig {
  tasks: TaskAttestation[]
}

export interface SlsaV02Material {
  uri: string
  digest: DigestSet
}

export interface SlsaV02Metadata {
  buildInvocationId?: string
  buildStartedOn?: string
  buildFinishedOn?: string
  completeness?: { parameters?: boolean; environment?: boolean; materials?: boolean }
  reproducible?: boolean
}

export interface SlsaV02Predicate {
  builder: { id: string }
  /** `tekton.dev/v1/TaskRun` or `tekton.dev/v1/PipelineRun` (`v1beta1` from older Chains). */
  buildType: string
  invocation?: SlsaV02Invocation
  buildConfig?: TaskRunBuildConfig | PipelineRunBuildConfig
  metadata?: SlsaV02Metadata
  materials?: SlsaV02Material[]
}

export type SlsaV02Statement = Statement<SlsaV02Predicate, typeof SLSA_PROVENANCE_V02>

// --- SLSA provenance v1 (chains-config format slsa/v2alpha*) -----------------

export interface ResourceDescriptor {
  uri?: string
  digest?: DigestSet
  name?: string
  downloadLocation?: string
  mediaType?: string
  /** Base64 content; Chains stores each result here as the base64 of its JSON value. */
  content?: string
  annotations?: Record<string, unknown>
}

export interface SlsaV1BuildDefinition {
  buildType: string
  externalParameters: Record<string, unknown>
  internalParameters?: Record<string, unknown>
  resolvedDependencies?: ResourceDescriptor[]
}

export interface SlsaV1RunDetails {
  builder: {
    id: string
    version?: Record<string, string>
    builderDependencies?: ResourceDescriptor[]
  }
  metadata?: { invocationId?: string; startedOn?: string; finishedOn?: string }
  byproducts?: ResourceDescriptor[]
}

export interface SlsaV1Predicate {
  buildDefinition: SlsaV1BuildDefinition
  runDetails: SlsaV1RunDetails
}

export type SlsaV1Statement = Statement<SlsaV1Predicate, typeof SLSA_PROVENANCE_V1>

// --- checks ------------------------------------------------------------------

/** Something that should be an in-toto Statement and is not. */
export class StatementError extends UserError {
  override name = 'StatementError'
}

/**
 * Checks the Statement envelope (type, subjects, predicate type) and returns
 * it typed. The predicate itself is not checked: readers must tolerate gaps.
 */
export function toStatement(value: unknown): InTotoStatement {
  if (!isRecord(value)) throw new StatementError('not an in-toto Statement: not a JSON object')
  const { _type, subject, predicateType } = value
  if (_type !== STATEMENT_V01 && _type !== STATEMENT_V1) {
    throw new StatementError(
      `not an in-toto Statement: _type is ${JSON.stringify(_type)}, expected ${STATEMENT_V01} or ${STATEMENT_V1}`,
    )
  }
  if (!Array.isArray(subject)) {
    throw new StatementError('in-toto Statement: "subject" is missing or not an array')
  }
  subject.forEach((entry: unknown, i) => {
    if (!isRecord(entry) || typeof entry.name !== 'string' || !isRecord(entry.digest)) {
      throw new StatementError(`in-toto Statement: subject[${i}] has no name or digest`)
    }
    for (const [algorithm, hex] of Object.entries(entry.digest)) {
      if (typeof hex !== 'string') {
        throw new StatementError(
          `in-toto Statement: subject[${i}].digest.${algorithm} is not a string`,
        )
      }
    }
  })
  if (typeof predicateType !== 'string' || predicateType === '') {
    throw new StatementError('in-toto Statement: "predicateType" is missing or not a string')
  }
  return value as unknown as InTotoStatement
}

/** Parses JSON bytes into a checked Statement. */
export function parseStatement(json: Uint8Array | string): InTotoStatement {
  return toStatement(
    parseJson(
      json,
      (reason) => new StatementError(`not an in-toto Statement: not JSON (${reason})`),
    ),
  )
}

export function isSlsaV02(statement: InTotoStatement): statement is SlsaV02Statement {
  return statement.predicateType === SLSA_PROVENANCE_V02 && isRecord(statement.predicate)
}

export function isSlsaV1(statement: InTotoStatement): statement is SlsaV1Statement {
  return statement.predicateType === SLSA_PROVENANCE_V1 && isRecord(statement.predicate)
}
