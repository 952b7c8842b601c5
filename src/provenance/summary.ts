/**
 * Reads what a user wants to know out of a Chains provenance Statement:
 * what was built, by whom, from which dataset, with which trainer image,
 * and how good the model is. Missing parts become undefined, never guesses.
 */
import { decodeBase64 } from '../base64.js'
import {
  SLSA_PROVENANCE_V02,
  SLSA_PROVENANCE_V1,
  toStatement,
  type ParamValue,
  type StatementType,
} from './types.js'

export interface SubjectSummary {
  name: string
  /** `sha256:<hex>` (another algorithm only when there is no sha256), undefined if none. */
  digest: string | undefined
}

export interface DatasetSummary {
  /** The dataset reference as the run recorded it (DATASET_URL, an input artifact, or the DATASET param). */
  url: string | undefined
  /** `sha256:<hex>`; undefined when the attestation does not record it. */
  digest: string | undefined
}

export interface ImageSummary {
  url: string
  digest: string | undefined
}

export interface ProvenanceSummary {
  statementType: StatementType
  predicateType: string
  subjects: SubjectSummary[]
  builderId: string | undefined
  buildType: string | undefined
  /** Run parameters: SLSA v0.2 invocation.parameters, or SLSA v1 externalParameters. */
  params: Record<string, ParamValue>
  dataset: DatasetSummary | undefined
  /** The image that ran the training step, `repo@sha256:…` (no `oci://`). */
  trainerImage: string | undefined
  /** The ACCURACY task result, when the run recorded one. */
  accuracy: number | undefined
  /** The IMAGE_URL / IMAGE_DIGEST task results. */
  image: ImageSummary | undefined
}

type Json = Record<string, unknown>

function asRecord(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Json)
    : undefined
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : []
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function isParamValue(value: unknown): value is ParamValue {
  if (typeof value === 'string') return true
  if (Array.isArray(value)) return value.every((v) => typeof v === 'string')
  const record = asRecord(value)
  return record !== undefined && Object.values(record).every((v) => typeof v === 'string')
}

function paramRecord(value: unknown): Record<string, ParamValue> {
  const params: Record<string, ParamValue> = {}
  for (const [name, v] of Object.entries(asRecord(value) ?? {})) {
    if (isParamValue(v)) params[name] = v
  }
  return params
}

/** `{sha256: hex}` to `sha256:hex`; another algorithm only if sha256 is absent. */
function digestText(digestSet: unknown): string | undefined {
  const set = asRecord(digestSet)
  if (set === undefined) return undefined
  const sha256 = asString(set.sha256)
  if (sha256) return `sha256:${sha256}`
  for (const [algorithm, hex] of Object.entries(set)) {
    if (typeof hex === 'string' && hex !== '') return `${algorithm}:${hex}`
  }
  return undefined
}

/** A digest result: trimmed, bare sha256 hex given its prefix, empty as undefined. */
function normalizeDigest(value: string | undefined): string | undefined {
  const text = value?.trim()
  if (!text) return undefined
  return /^[0-9a-f]{64}$/.test(text) ? `sha256:${text}` : text
}

function stripScheme(ref: string): string {
  return ref.trim().replace(/^oci:\/\//, '')
}

/** The repository of an image reference: no scheme, tag or digest. */
function repositoryOf(ref: string): string {
  let repo = stripScheme(ref)
  const at = repo.indexOf('@')
  if (at >= 0) repo = repo.slice(0, at)
  const colon = repo.lastIndexOf(':')
  // A colon after the last slash is a tag; before it, a registry port.
  if (colon > repo.lastIndexOf('/')) repo = repo.slice(0, colon)
  return repo
}

function digestInRef(ref: string): string | undefined {
  const at = ref.indexOf('@')
  if (at < 0) return undefined
  const digest = ref.slice(at + 1).trim()
  return /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : undefined
}

interface Result {
  name: string
  value: ParamValue
}

/** One task of the run, or the whole run when the attestation has no tasks. */
interface RunPart {
  params: Record<string, ParamValue>
  results: Result[]
  stepImages: string[]
}

interface Material {
  uri: string
  digest: string | undefined
}

/** The two predicate versions read into one shape. */
interface Extracted {
  builderId: string | undefined
  buildType: string | undefined
  params: Record<string, ParamValue>
  parts: RunPart[]
  materials: Material[]
}

function readResults(value: unknown): Result[] {
  const results: Result[] = []
  for (const entry of asArray(value)) {
    const result = asRecord(entry)
    const name = asString(result?.name)
    if (name !== undefined && isParamValue(result?.value)) {
      results.push({ name, value: result.value })
    }
  }
  return results
}

function readStepImages(steps: unknown): string[] {
  const images: string[] = []
  for (const step of asArray(steps)) {
    const image = asString(asRecord(asRecord(step)?.environment)?.image)
    if (image) images.push(stripScheme(image))
  }
  return images
}

function readMaterials(value: unknown): Material[] {
  const materials: Material[] = []
  for (const entry of asArray(value)) {
    const material = asRecord(entry)
    const uri = asString(material?.uri)
    if (uri) materials.push({ uri, digest: digestText(material?.digest) })
  }
  return materials
}

function extractV02(predicate: Json): Extracted {
  const buildConfig = asRecord(predicate.buildConfig)
  const params = paramRecord(asRecord(predicate.invocation)?.parameters)
  let parts: RunPart[]
  if (Array.isArray(buildConfig?.tasks)) {
    // PipelineRun form: one entry per executed task, with its results.
    parts = buildConfig.tasks.map((entry: unknown) => {
      const task = asRecord(entry)
      return {
        params: paramRecord(asRecord(task?.invocation)?.parameters),
        results: readResults(task?.results),
        stepImages: readStepImages(task?.steps),
      }
    })
  } else {
    // TaskRun form: steps only; Chains records no results here.
    parts = [{ params, results: [], stepImages: readStepImages(buildConfig?.steps) }]
  }
  return {
    builderId: asString(asRecord(predicate.builder)?.id),
    buildType: asString(predicate.buildType),
    params,
    parts,
    materials: readMaterials(predicate.materials),
  }
}

/**
 * Chains stores each result as a byproduct whose content is base64 of its
 * JSON value, named `taskRunResults/<NAME>` or `pipelineRunResults/<NAME>`
 * (slsa/v2alpha3), with the run's name before `<NAME>` in slsa/v2alpha4.
 * StepAction results (`stepResults/...`) are not the run's.
 */
const RESULT_BYPRODUCT = /^(?:taskRunResults|pipelineRunResults)\/(?:[^/]+\/)?([^/]+)$/

function readByproductResults(byproducts: unknown): Result[] {
  const results: Result[] = []
  for (const entry of asArray(byproducts)) {
    const byproduct = asRecord(entry)
    const match = RESULT_BYPRODUCT.exec(asString(byproduct?.name) ?? '')
    const content = asString(byproduct?.content)
    const name = match?.[1]
    if (name === undefined || content === undefined) continue
    const bytes = decodeBase64(content)
    if (bytes === undefined) continue
    try {
      const value: unknown = JSON.parse(bytes.toString('utf8'))
      if (isParamValue(value)) results.push({ name, value })
    } catch {
      // Not a result Chains wrote; leave it out rather than fail the summary.
    }
  }
  return results
}

function extractV1(predicate: Json): Extracted {
  const definition = asRecord(predicate.buildDefinition)
  const runDetails = asRecord(predicate.runDetails)
  const external = asRecord(definition?.externalParameters)
  // Chains puts the run's spec under externalParameters.runSpec, params as [{name, value}].
  const specParams = asRecord(external?.runSpec)?.params
  let params: Record<string, ParamValue>
  if (Array.isArray(specParams)) {
    params = {}
    for (const entry of readResults(specParams)) params[entry.name] = entry.value
  } else {
    params = paramRecord(external)
  }
  return {
    builderId: asString(asRecord(runDetails?.builder)?.id),
    buildType: asString(definition?.buildType),
    params,
    parts: [{ params, results: readByproductResults(runDetails?.byproducts), stepImages: [] }],
    materials: readMaterials(definition?.resolvedDependencies),
  }
}

function firstResult(
  parts: RunPart[],
  name: string,
): { part: RunPart; value: ParamValue } | undefined {
  for (const part of parts) {
    const result = part.results.find((r) => r.name === name)
    if (result !== undefined) return { part, value: result.value }
  }
  return undefined
}

function stringResult(parts: RunPart[], name: string, within?: RunPart): string | undefined {
  const found = firstResult(within ? [within] : parts, name) ?? firstResult(parts, name)
  return typeof found?.value === 'string' ? found.value.trim() || undefined : undefined
}

function findDataset(run: Extracted): DatasetSummary | undefined {
  const datasetParam = [run.params, ...run.parts.map((p) => p.params)]
    .map((params) => params.DATASET)
    .find((value): value is string => typeof value === 'string' && value.trim() !== '')
    ?.trim()

  // `*ARTIFACT_INPUTS` object results: the dataset is the one named for it or the one DATASET points at.
  const inputs = run.parts
    .flatMap((part) => part.results)
    .filter((r) => r.name.endsWith('ARTIFACT_INPUTS'))
    .flatMap((r) => {
      if (typeof r.value !== 'object' || Array.isArray(r.value)) return []
      const uri = r.value.uri?.trim()
      return uri ? [{ name: r.name, uri, digest: normalizeDigest(r.value.digest) }] : []
    })

  let url = stringResult(run.parts, 'DATASET_URL')
  const namedInput = inputs.find((i) => i.name.toUpperCase().includes('DATASET'))
  const repoOfInterest = url ?? datasetParam
  const matchingInput =
    namedInput ??
    (repoOfInterest === undefined
      ? undefined
      : inputs.find((i) => repositoryOf(i.uri) === repositoryOf(repoOfInterest)))
  url ??= matchingInput?.uri ?? datasetParam

  let digest = normalizeDigest(stringResult(run.parts, 'DATASET_DIGEST'))
  digest ??= matchingInput?.digest
  if (url !== undefined) {
    const repo = repositoryOf(url)
    digest ??= digestInRef(url)
    digest ??= run.materials.find((m) => repositoryOf(m.uri) === repo && m.digest)?.digest
  }
  if (url === undefined && digest === undefined) return undefined
  return { url, digest }
}

function findImage(run: Extracted): { image: ImageSummary | undefined; part: RunPart | undefined } {
  const found = firstResult(run.parts, 'IMAGE_URL')
  const url = typeof found?.value === 'string' ? found.value.trim() : ''
  if (found === undefined || url === '') return { image: undefined, part: undefined }
  const digest = normalizeDigest(stringResult(run.parts, 'IMAGE_DIGEST', found.part))
  return { image: { url, digest }, part: found.part }
}

function findTrainerImage(
  run: Extracted,
  imagePart: RunPart | undefined,
  dataset: DatasetSummary | undefined,
): string | undefined {
  const fromStep = imagePart?.stepImages[0] ?? run.parts.find((p) => p.stepImages[0])?.stepImages[0]
  if (fromStep !== undefined) return fromStep
  // No steps recorded (SLSA v1): an image material that is not the dataset.
  const datasetRepo = dataset?.url === undefined ? undefined : repositoryOf(dataset.url)
  const material = run.materials.find(
    (m) => m.uri.startsWith('oci://') && m.digest && repositoryOf(m.uri) !== datasetRepo,
  )
  return material ? `${stripScheme(material.uri)}@${material.digest}` : undefined
}

function findAccuracy(run: Extracted): number | undefined {
  const text = stringResult(run.parts, 'ACCURACY')
  if (text === undefined) return undefined
  const accuracy = Number(text)
  return Number.isFinite(accuracy) ? accuracy : undefined
}

/**
 * Summarizes an in-toto Statement with a SLSA v0.2 (Chains `slsa/v1`) or
 * SLSA v1 predicate. Throws StatementError for something that is not a
 * Statement; any other predicate type gives subjects and little else.
 */
export function summarizeProvenance(statement: unknown): ProvenanceSummary {
  const checked = toStatement(statement)
  const subjects = checked.subject.map((s) => ({ name: s.name, digest: digestText(s.digest) }))
  const predicate = asRecord(checked.predicate) ?? {}
  let run: Extracted | undefined
  if (checked.predicateType === SLSA_PROVENANCE_V02) run = extractV02(predicate)
  else if (checked.predicateType === SLSA_PROVENANCE_V1) run = extractV1(predicate)

  const base = {
    statementType: checked._type,
    predicateType: checked.predicateType,
    subjects,
  }
  if (run === undefined) {
    return {
      ...base,
      builderId: undefined,
      buildType: undefined,
      params: {},
      dataset: undefined,
      trainerImage: undefined,
      accuracy: undefined,
      image: undefined,
    }
  }
  const dataset = findDataset(run)
  const { image, part } = findImage(run)
  return {
    ...base,
    builderId: run.builderId,
    buildType: run.buildType,
    params: run.params,
    dataset,
    trainerImage: findTrainerImage(run, part, dataset),
    accuracy: findAccuracy(run),
    image,
  }
}
