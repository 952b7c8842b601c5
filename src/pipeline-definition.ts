/**
 * The training Pipeline as a file: the bundled tekton/pipeline.yaml or the
 * user's `pipeline` input. Read and checked before anything is created, so a
 * wrong file, and a `params` key the Pipeline does not declare, are input
 * mistakes reported with the others (Tekton ignores an undeclared param
 * without a word, so a typo would otherwise go unnoticed).
 */
import { UserError } from './errors.js'
import { isRecord } from './json.js'
import { parseManifests, type KubeObject } from './kube/objects.js'

export const TEKTON_API = 'tekton.dev/v1'

/** Results every pipeline must expose: what Chains signs (DESIGN 3). */
export const REQUIRED_RESULTS = ['IMAGE_URL', 'IMAGE_DIGEST'] as const

/**
 * Params the action sets itself from other inputs; `params` may not set them.
 * MIN_ACCURACY is not among them: `min-accuracy` is the policy's to judge (a
 * model under it is still signed, and the verdict names the rule); `params`
 * may set it to stop the training itself.
 */
export const OWN_PARAMS = {
  IMAGE: 'image',
  DATASET: 'dataset',
  TRAINER_IMAGE: 'trainer-image',
} as const

export interface DeclaredParam {
  name: string
  /** Whether the Pipeline gives it a default (else a PipelineRun must set it). */
  hasDefault: boolean
}

export interface PipelineDefinition {
  /** The Pipeline and any Tasks of the file, in order. */
  objects: KubeObject[]
  pipelineName: string
  params: DeclaredParam[]
}

/**
 * Parses and checks a Pipeline file: exactly one tekton.dev/v1 Pipeline,
 * otherwise only Tasks, and the results Chains needs. `source` names the
 * file in errors ("pipeline ./ci/train.yaml", "the bundled pipeline.yaml").
 */
export function parsePipelineFile(text: string, source: string): PipelineDefinition {
  const objects = parseManifests(text, source)
  const pipelines = objects.filter((o) => o.kind === 'Pipeline')
  if (pipelines.length !== 1 || pipelines[0]!.apiVersion !== TEKTON_API) {
    throw new UserError(
      `${source} must hold exactly one ${TEKTON_API} Pipeline (found ${
        pipelines.map((p) => `${p.apiVersion} ${p.metadata.name}`).join(', ') || 'none'
      })`,
    )
  }
  const found = pipelines[0]!
  const spec = isRecord(found.spec) ? found.spec : {}
  const results = Array.isArray(spec.results) ? spec.results : []
  const names = new Set(results.map((r) => (isRecord(r) ? r.name : undefined)))
  const missing = REQUIRED_RESULTS.filter((r) => !names.has(r))
  if (missing.length > 0) {
    throw new UserError(
      `${source}: Pipeline ${found.metadata.name} must declare the results ${REQUIRED_RESULTS.join(
        ' and ',
      )} (missing ${missing.join(', ')}): Tekton Chains signs the image they name`,
    )
  }
  const other = objects.filter((o) => !['Pipeline', 'Task'].includes(o.kind))
  if (other.length > 0) {
    throw new UserError(
      `${source} may hold only Tasks and one Pipeline, not ${other[0]!.kind} ${other[0]!.metadata.name}`,
    )
  }
  const params = (Array.isArray(spec.params) ? spec.params : [])
    .filter(isRecord)
    .filter((p): p is Record<string, unknown> & { name: string } => typeof p.name === 'string')
    .map((p) => ({ name: p.name, hasDefault: p.default !== undefined }))
  return { objects, pipelineName: found.metadata.name, params }
}

/**
 * What is wrong with `params` for this Pipeline, one sentence per problem:
 * keys it does not declare (with the ones it does), and params without a
 * default that neither the action nor `params` sets.
 */
export function paramProblems(
  definition: PipelineDefinition,
  given: Readonly<Record<string, string>>,
): string[] {
  const problems: string[] = []
  const declared = new Set(definition.params.map((p) => p.name))
  const settable = definition.params.map((p) => p.name).filter((name) => !(name in OWN_PARAMS))
  const unknown = Object.keys(given).filter((key) => !declared.has(key))
  if (unknown.length > 0) {
    problems.push(
      `${unknown.join(', ')} ${unknown.length === 1 ? 'is not a param' : 'are not params'} of Pipeline ${
        definition.pipelineName
      }; it declares ${settable.length > 0 ? settable.join(', ') : 'none that params may set'}` +
        ` (${Object.keys(OWN_PARAMS).join(', ')} come from the action's inputs)`,
    )
  }
  const unset = definition.params.filter(
    (p) => !p.hasDefault && !(p.name in OWN_PARAMS) && !(p.name in given),
  )
  if (unset.length > 0) {
    problems.push(
      `Pipeline ${definition.pipelineName} needs ${unset.map((p) => p.name).join(', ')} (no default): set ${
        unset.length === 1 ? 'it' : 'them'
      } as KEY=value lines`,
    )
  }
  return problems
}
